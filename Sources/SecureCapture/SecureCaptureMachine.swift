import NIOCore

/// Secure capture (PCI mode) for one call, as a pure state machine: one `mutating func` per event, each
/// returning what the call must do. No I/O and no clock of its own: every event carries the time, and the call
/// arms a timer for `deadline`.
///
/// ```
/// idle ──start──▶ capturing ──finish key / max digits / timeout (≥ min digits)──▶ submitting ──sink answer──▶ idle
///                     │  └─ too few digits, stop, call ended ─▶ idle (result, nothing submitted)
/// ```
/// While capturing, every key goes here and nowhere else; the agent is told only `*` per key.
public struct SecureCaptureMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Tell the agent (and, for a result, the call record).
        case notify(SecureCaptureUpdate)
        /// Give the digits to the payment sink; its answer comes back through `sinkAnswered`.
        case submit(CapturedDigits, reference: String?)
    }

    public enum StartError: Error, Sendable, Equatable, CustomStringConvertible {
        case alreadyCapturing
        /// The previous capture's digits are still on their way to the sink.
        case submitting
        case invalid(SecureCaptureOptions.Invalid)

        public var description: String {
            switch self {
            case .alreadyCapturing: "secure capture is already active"
            case .submitting: "the previous secure capture is still being submitted"
            case .invalid(let why): "invalid secure capture options: \(why)"
            }
        }
    }

    private struct Capture: Sendable {
        var options: SecureCaptureOptions
        var allowLast4: Bool
        var digits = CapturedDigits()
        var started: NIODeadline
        var lastKey: NIODeadline
    }

    /// What is known of a submitted capture while the sink works: everything but the digits.
    private struct Submitted: Sendable {
        var endedBy: SecureCaptureEnd
        var count: Int
        var luhnValid: Bool?
        var last4: String?
        var reference: String?
    }

    private enum State: Sendable {
        case idle
        case capturing(Capture)
        case submitting(Submitted)
    }

    private var state = State.idle

    public init() {}

    /// True while keys belong to the capture.
    public var isCapturing: Bool {
        if case .capturing = state { return true }
        return false
    }

    /// When `timerFired` must be called next (nil: no timer needed).
    public var deadline: NIODeadline? {
        guard case .capturing(let capture) = state else { return nil }
        return min(capture.started + capture.options.totalTimeout, capture.lastKey + capture.options.interDigitTimeout)
    }

    /// Begins a capture. `allowLast4` is the route's permission; the options' `revealLast4` is the agent's wish.
    public mutating func start(_ options: SecureCaptureOptions, allowLast4: Bool, at now: NIODeadline) throws(StartError) -> [Action] {
        switch state {
        case .capturing: throw .alreadyCapturing
        case .submitting: throw .submitting
        case .idle: break
        }
        let checked: SecureCaptureOptions
        do throws(SecureCaptureOptions.Invalid) {
            checked = try options.validated()
        } catch {
            throw .invalid(error)
        }
        state = .capturing(Capture(options: checked, allowLast4: allowLast4, started: now, lastKey: now))
        return [.notify(.started(reference: checked.reference))]
    }

    /// A key press while capturing (call only when `isCapturing`; otherwise the key is not the capture's).
    public mutating func key(_ key: Character, at now: NIODeadline) -> [Action] {
        guard case .capturing(var capture) = state else { return [] }
        if key == capture.options.finishKey { return end(capture, by: .finishKey) }
        capture.digits.append(key)
        capture.lastKey = now
        let count = capture.digits.count
        if count >= capture.options.maxDigits {
            return [.notify(.digit(count: count))] + end(capture, by: .maxDigits)
        }
        state = .capturing(capture)
        return [.notify(.digit(count: count))]
    }

    /// The timer armed for `deadline` fired (or any time later).
    public mutating func timerFired(at now: NIODeadline) -> [Action] {
        guard case .capturing(let capture) = state else { return [] }
        if now >= capture.started + capture.options.totalTimeout { return end(capture, by: .totalTimeout) }
        if now >= capture.lastKey + capture.options.interDigitTimeout { return end(capture, by: .interDigitTimeout) }
        return []
    }

    /// The agent asked to stop: the capture is discarded.
    public mutating func stop() -> [Action] {
        cancel(by: .stopped)
    }

    /// The call ended: a capture under way is discarded; a submission under way still gets its answer.
    public mutating func callEnded() -> [Action] {
        cancel(by: .callEnded)
    }

    /// The sink's answer to the last `submit`.
    public mutating func sinkAnswered(_ outcome: PaymentSinkOutcome) -> [Action] {
        guard case .submitting(let submitted) = state else { return [] }
        state = .idle
        var result = SecureCaptureResult(
            status: .success, endedBy: submitted.endedBy, count: submitted.count, luhnValid: submitted.luhnValid,
            last4: submitted.last4, reference: submitted.reference, sinkAttempts: outcome.attempts)
        switch outcome.kind {
        case .accepted(let token, let reference):
            result.token = token
            result.reference = reference ?? submitted.reference
        case .refused(let why), .unreachable(let why):
            result.status = .failure
            result.error = why
        case .timedOut:
            result.status = .timeout
            result.error = "the payment sink did not answer in time"
        }
        return [.notify(.result(result))]
    }

    // MARK: - Endings

    private mutating func cancel(by reason: SecureCaptureEnd) -> [Action] {
        guard case .capturing(var capture) = state else { return [] }
        state = .idle
        let count = capture.digits.count
        capture.digits.erase()
        return [.notify(.result(SecureCaptureResult(
            status: .cancelled, endedBy: reason, count: count, reference: capture.options.reference)))]
    }

    private mutating func end(_ capture: Capture, by reason: SecureCaptureEnd) -> [Action] {
        var capture = capture
        let options = capture.options
        let count = capture.digits.count
        guard count >= options.minDigits else {
            state = .idle
            capture.digits.erase()
            let timedOut = count == 0 && (reason == .interDigitTimeout || reason == .totalTimeout)
            return [.notify(.result(SecureCaptureResult(
                status: timedOut ? .timeout : .failure, endedBy: reason, count: count, reference: options.reference,
                error: timedOut ? "no key pressed" : "\(count) digits captured, at least \(options.minDigits) needed")))]
        }
        let luhnValid = options.cardNumber ? capture.digits.withUnsafeKeys(CardNumberCheck.isPlausiblePAN) : nil
        let revealLast4 = options.revealLast4 && capture.allowLast4 && CardNumberCheck.panLengths.contains(count)
        state = .submitting(Submitted(
            endedBy: reason, count: count, luhnValid: luhnValid, last4: revealLast4 ? capture.digits.lastFour : nil,
            reference: options.reference))
        return [.submit(capture.digits, reference: options.reference)]
    }
}
