import Agent
import Logging
import Media
import NIOCore
import SecureCapture

/// One call's secure capture (PCI mode): the state machine, its timer, the silencer on the caller's audio, and
/// the sink submissions still under way. Lives in `Call.secureCapture`, on the call's loop.
struct CallSecureCapture {
    let policy: SecureCapturePolicy
    let sink: WebhookPaymentSink?
    var machine = SecureCaptureMachine()
    var timer: Scheduled<Void>?
    /// From the start of a capture until no tone or guard is left after its end.
    var silencer: ToneSilencer?
    var submissionsInFlight = 0
    /// The call ended while a submission was under way: write the record once it is answered.
    var recordWaitsForSink = false

    init(policy: SecureCapturePolicy, sink: WebhookPaymentSink?) {
        self.policy = policy
        self.sink = sink
    }
}

/// Why a secure-capture request from the agent was refused; safe to send back to it.
struct SecureCaptureRefusal: Error, CustomStringConvertible {
    let description: String
}

extension Call {
    // MARK: - Requests

    func startSecureCapture(_ options: SecureCaptureOptions) throws {
        eventLoop.assertInEventLoop()
        guard phase == .active else { throw SecureCaptureRefusal(description: "the call is not active") }
        guard secureCapture.sink != nil else {
            throw SecureCaptureRefusal(description: "no payment sink is configured for this route")
        }
        let actions = try secureCapture.machine.start(options, allowLast4: secureCapture.policy.allowLast4, at: .now())
        if secureCapture.silencer == nil { secureCapture.silencer = ToneSilencer() }
        logger.info("secure capture started", metadata: [
            "max_digits": "\(options.maxDigits)", "reference": "\(options.reference ?? "-")",
        ])
        perform(actions)
    }

    func stopSecureCapture() throws {
        eventLoop.assertInEventLoop()
        guard secureCapture.machine.isCapturing else { throw SecureCaptureRefusal(description: "no secure capture is active") }
        perform(secureCapture.machine.stop())
    }

    /// The route captures from the moment the call is answered.
    func startCaptureOnAnswer() {
        guard let options = secureCapture.policy.onAnswer else { return }
        do {
            try startSecureCapture(options)
        } catch {
            logger.error("secure capture on answer could not start", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Events

    /// A de-duplicated key press: true when the capture took it (then it goes nowhere else).
    func captureKey(_ key: Character) -> Bool {
        guard secureCapture.machine.isCapturing else { return false }
        perform(secureCapture.machine.key(key, at: .now()))
        return true
    }

    /// Caller audio toward the agent: through the silencer while it runs.
    func forwardCallerAudio(_ samples: UnsafeBufferPointer<Int16>) {
        guard let silencer = secureCapture.silencer else {
            agent?.callerAudio(samples)
            return
        }
        silencer.process(samples) { agent?.callerAudio($0) }
        if !secureCapture.machine.isCapturing, silencer.isQuiet {
            silencer.flush { agent?.callerAudio($0) }
            secureCapture.silencer = nil
        }
    }

    /// The call is over: a capture under way is discarded.
    func endSecureCapture() {
        perform(secureCapture.machine.callEnded())
        secureCapture.timer?.cancel()
        secureCapture.timer = nil
        secureCapture.silencer = nil
    }

    /// False while a submission is under way: `sinkAnswered` writes the record once the sink has answered.
    func recordMayBeWritten() -> Bool {
        guard secureCapture.submissionsInFlight == 0 else {
            secureCapture.recordWaitsForSink = true
            return false
        }
        return true
    }

    // MARK: - Actions

    private func perform(_ actions: [SecureCaptureMachine.Action]) {
        for action in actions {
            switch action {
            case .notify(let update):
                if case .result(let result) = update { recordCapture(result) }
                agent?.secureCapture(update)
            case .submit(let digits, let reference):
                submit(digits, reference: reference)
            }
        }
        armCaptureTimer()
    }

    private func submit(_ digits: CapturedDigits, reference: String?) {
        guard let sink = secureCapture.sink else { return }
        secureCapture.submissionsInFlight += 1
        let callSid = self.callSid
        let loop = NIOLoopBound(self, eventLoop: eventLoop)
        let eventLoop = self.eventLoop
        Task {
            let outcome = await sink.submit(digits, callSid: callSid, reference: reference)
            eventLoop.execute { loop.value.sinkAnswered(outcome) }
        }
    }

    private func sinkAnswered(_ outcome: PaymentSinkOutcome) {
        secureCapture.submissionsInFlight -= 1
        perform(secureCapture.machine.sinkAnswered(outcome))
        if secureCapture.recordWaitsForSink, secureCapture.submissionsInFlight == 0 {
            secureCapture.recordWaitsForSink = false
            services.finish(self)
        }
    }

    private func armCaptureTimer() {
        secureCapture.timer?.cancel()
        secureCapture.timer = nil
        guard let deadline = secureCapture.machine.deadline else { return }
        secureCapture.timer = eventLoop.scheduleTask(deadline: deadline) { [self] in
            secureCapture.timer = nil
            perform(secureCapture.machine.timerFired(at: .now()))
        }
    }

    private func recordCapture(_ result: SecureCaptureResult) {
        record.secureCapture = (record.secureCapture ?? []) + [SecureCaptureRecord(result)]
        logger.info("secure capture ended", metadata: [
            "status": "\(result.status.rawValue)", "ended_by": "\(result.endedBy.rawValue)", "digits": "\(result.count)",
            "sink_attempts": "\(result.sinkAttempts)",
        ])
    }
}

/// What a call record keeps of one capture: that it happened, how many keys, the sink's result. Never a key,
/// never the last four, never the token.
public struct SecureCaptureRecord: Codable, Sendable, Equatable {
    public var status: String
    public var endedBy: String
    public var digits: Int
    public var luhnValid: Bool?
    public var sinkAttempts: Int
    public var reference: String?

    init(_ result: SecureCaptureResult) {
        status = result.status.rawValue
        endedBy = result.endedBy.rawValue
        digits = result.count
        luhnValid = result.luhnValid
        sinkAttempts = result.sinkAttempts
        reference = result.reference
    }

    enum CodingKeys: String, CodingKey {
        case status, endedBy = "ended_by", digits, luhnValid = "luhn_valid", sinkAttempts = "sink_attempts", reference
    }
}
