import Agent
import Foundation
import Logging
import Media
import NIOCore
import NIOPosix

/// The embedded agent that runs a `CallFlow`; confined to the call's `EventLoop`.
///
/// A thin adapter: `FlowMachine` decides, this class does what it asks — queues speech and prompts with a mark
/// behind each (the mark's echo is the machine's `audioPlayed`), arms one timer at the machine's deadline, keeps
/// the caller's audio while recording and writes it on NIO's thread pool. Speech not in the cache is rendered on
/// the thread pool too; nothing here blocks the loop. The caller audio it records is what the call hands every
/// agent: during secure capture, already silenced around key tones.
public final class FlowAgent: CallAgent {
    public let eventLoop: EventLoop
    private let flow: CallFlow
    private let audio: FlowAudio
    private var logger: Logger

    // All fields below: protected by the event loop thread.
    private var machine: FlowMachine?
    private weak var control: AgentCallControl?
    private var timer: Scheduled<Void>?
    /// Audio the machine waits for, and whether its mark is queued (false while its speech is being rendered).
    private var audioInFlight: (id: Int, marked: Bool)?
    /// The caller's audio while a `record` step runs; capacity reserved at its start.
    private var recording: [Int16]?
    private var recordingLimit = 0
    /// Events that arrived while actions were being carried out (a cleared mark is echoed at once).
    private var queued: [(inout FlowMachine, NIODeadline) -> [FlowMachine.Action]] = []
    private var running = false

    public init(flow: CallFlow, audio: FlowAudio, eventLoop: EventLoop, logger: Logger) {
        self.flow = flow
        self.audio = audio
        self.eventLoop = eventLoop
        self.logger = logger
    }

    public func start(context: CallContext, control: AgentCallControl) {
        eventLoop.assertInEventLoop()
        self.control = control
        logger[metadataKey: "call"] = "\(context.callSid)"
        let variables = [
            "from": context.from, "to": context.to, "trunk": context.trunk, "route": context.route, "call_sid": context.callSid,
        ]
        machine = FlowMachine(flow: flow, variables: variables, callSid: context.callSid)
        handle { machine, now in machine.start(at: now) }
    }

    public func callerAudio(_ samples: UnsafeBufferPointer<Int16>) {
        eventLoop.assertInEventLoop()
        guard recording != nil else { return }
        let room = recordingLimit - recording!.count
        recording!.append(contentsOf: samples.prefix(room))  // within the reserved capacity: no allocation
    }

    public func callerDigit(_ digit: Character) {
        eventLoop.assertInEventLoop()
        handle { machine, now in machine.key(digit, at: now) }
    }

    public func markPlayed(_ id: Int) {
        eventLoop.assertInEventLoop()
        guard audioInFlight?.id == id else { return }
        audioInFlight = nil
        handle { machine, now in machine.audioPlayed(id, at: now) }
    }

    public func transfer(_ update: TransferUpdate) {
        eventLoop.assertInEventLoop()
        switch update.status {
        case .completed: handle { machine, now in machine.transferEnded(completed: true, at: now) }
        case .failed, .cancelled: handle { machine, now in machine.transferEnded(completed: false, at: now) }
        case .accepted, .trying, .ringing, .answered: break
        }
    }

    public func stop(reason: String) {
        eventLoop.assertInEventLoop()
        timer?.cancel()
        timer = nil
        control = nil
        audioInFlight = nil
        guard var machine else { return }
        for action in machine.callEnded() { perform(action) }
        self.machine = nil
    }

    // MARK: - Driving the machine

    /// Feeds one event to the machine and carries out its actions; events raised meanwhile wait their turn.
    private func handle(_ event: @escaping (inout FlowMachine, NIODeadline) -> [FlowMachine.Action]) {
        queued.append(event)
        guard !running else { return }
        running = true
        defer { running = false }
        while !queued.isEmpty {
            let next = queued.removeFirst()
            guard machine != nil, control != nil else { break }
            let actions = next(&machine!, .now())
            for action in actions { perform(action) }
        }
        queued.removeAll()
        armTimer()
    }

    private func armTimer() {
        timer?.cancel()
        timer = nil
        guard let deadline = machine?.deadline else { return }
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            handle { machine, now in machine.timerFired(at: now) }
        }
    }

    private func perform(_ action: FlowMachine.Action) {
        switch action {
        case .say(let text, let id):
            audioInFlight = (id, false)
            guard let speech = audio.speech else { return fail("no speech synthesizer") }
            if let samples = speech.cached(text, sampleRate: audio.sampleRate) {
                return queue(samples, id: id)
            }
            speech.render(text, sampleRate: audio.sampleRate, on: eventLoop).assumeIsolated().whenComplete { [self] result in
                // Stopped by a key, or the call ended, while it was being rendered: nothing to play.
                guard audioInFlight?.id == id else { return }
                switch result {
                case .success(let samples): queue(samples, id: id)
                case .failure(let error): fail("speech synthesis failed: \(error)")
                }
            }
        case .play(let prompt, let id):
            audioInFlight = (id, false)
            queue(audio.prompts[prompt], id: id)
        case .stopAudio(let id):
            guard let inFlight = audioInFlight, inFlight.id == id else { return }
            if inFlight.marked {
                control?.agentClear()  // echoes the mark: `markPlayed` → `audioPlayed`
            } else {
                audioInFlight = nil
                handle { machine, now in machine.audioPlayed(id, at: now) }
            }
        case .startRecording(let maxDuration):
            recordingLimit = Int(maxDuration.nanoseconds / 1_000_000) * audio.sampleRate / 1000
            recording = []
            recording!.reserveCapacity(recordingLimit)
        case .finishRecording(let file):
            guard let samples = recording, let folder = flow.recordings else { return }
            recording = nil
            write(samples, to: "\(folder)/\(file)")
        case .transfer(let request):
            do {
                try control?.agentTransfer(.start(request))
            } catch {
                logger.warning("call flow transfer refused", metadata: ["reason": "\(error)"])
                handle { machine, now in machine.transferEnded(completed: false, at: now) }
            }
        case .hangUp(let reason):
            let control = self.control
            self.control = nil
            control?.agentHangUp(reason: reason)
        }
    }

    private func queue(_ samples: [Int16], id: Int) {
        guard let control else { return }
        audioInFlight = (id, true)
        samples.withUnsafeBufferPointer { control.agentPlay($0) }
        control.agentMark(id)
    }

    private func fail(_ reason: String) {
        logger.error("call flow failed", metadata: ["reason": "\(reason)"])
        let control = self.control
        self.control = nil
        control?.agentFailed(.failedMidCall(reason))
    }

    /// Writes a recording on the thread pool; the call does not wait for it.
    private func write(_ samples: [Int16], to path: String) {
        let rate = audio.sampleRate
        let logger = self.logger
        NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            try Data(WAVFile.encode(samples, sampleRate: rate)).write(to: URL(fileURLWithPath: path), options: .atomic)
        }.whenComplete { result in
            switch result {
            case .success:
                logger.info("recording written", metadata: ["file": "\(path)", "seconds": "\(samples.count / rate)"])
            case .failure(let error):
                logger.error("could not write recording", metadata: ["file": "\(path)", "error": "\(error)"])
            }
        }
    }
}

@available(*, unavailable)
extension FlowAgent: Sendable {}
