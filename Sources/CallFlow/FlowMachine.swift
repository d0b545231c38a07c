import Agent
import NIOCore

/// Runs a `CallFlow` for one call as a pure state machine: one `mutating func` per event, each returning what the
/// agent must do. No I/O and no clock of its own: every event carries the time, and the agent arms one timer for
/// `deadline`.
///
/// ```
/// step ─say/play─▶ audio ──played──────────────────▶ next step
///   │                └─ key: stop it (barge-in), keep the key for the next gather
///   ├─gather─▶ gathering ──finish key / max digits / timeout──▶ variable set, next step
///   ├─record─▶ recording ──finish key / max length / hang-up──▶ file written, next step
///   ├─branch/goto/set─▶ next step at once (counted against max_steps)
///   └─hangup, end of steps, max_steps ─▶ done
/// ```
public struct FlowMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Speak `text`, then report `audioPlayed(id)`.
        case say(String, id: Int)
        /// Play the flow's prompt, then report `audioPlayed(id)`.
        case play(prompt: Int, id: Int)
        /// The caller pressed a key during audio `id`: drop what is left of it, then report `audioPlayed(id)`.
        case stopAudio(id: Int)
        /// Keep the caller's audio from now on, at most `maxDuration` of it.
        case startRecording(maxDuration: TimeAmount)
        /// Write what was kept to `file` in the recordings folder.
        case finishRecording(file: String)
        /// Ask the gateway to transfer the call, then report `transferEnded`.
        case transfer(TransferRequest)
        case hangUp(reason: String)
    }

    private enum State: Sendable {
        case idle
        case audio(id: Int, stopping: Bool)
        case gathering(CallFlow.Gather, digits: String, started: NIODeadline, lastKey: NIODeadline?)
        case recording(CallFlow.Record, file: String, started: NIODeadline)
        /// Waiting for the gateway's transfer; on failure the flow goes on at `onFailure`.
        case transferring(onFailure: Int?)
        case done
    }

    /// Keys kept while no gather runs (type-ahead); more are dropped.
    public static let typeAheadLimit = 32

    private let flow: CallFlow
    private let callSid: String
    private var state = State.idle
    private var next = 0
    private var stepsRun = 0
    private var typeAhead: [Character] = []
    private var nextAudioID = 1
    private var recordingsMade = 0
    public private(set) var variables: [String: String]

    /// - Parameters:
    ///   - variables: the built-in ones (`CallFlow.builtInVariables`), from the call's context.
    ///   - callSid: names the call's recordings.
    public init(flow: CallFlow, variables: [String: String], callSid: String) {
        self.flow = flow
        self.variables = variables
        self.callSid = callSid
    }

    /// When `timerFired` must be called next (nil: no timer needed).
    public var deadline: NIODeadline? {
        switch state {
        case .gathering(let gather, _, let started, let lastKey):
            lastKey.map { $0 + gather.interDigitTimeout } ?? started + gather.timeout
        case .recording(let record, _, let started):
            started + record.maxDuration
        case .idle, .audio, .transferring, .done:
            nil
        }
    }

    /// True once the flow hung up or the call ended.
    public var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// The call is answered: run from the first step.
    public mutating func start(at now: NIODeadline) -> [Action] {
        guard case .idle = state else { return [] }
        return run(at: now)
    }

    /// A key from the caller.
    public mutating func key(_ key: Character, at now: NIODeadline) -> [Action] {
        switch state {
        case .audio(let id, let stopping):
            keep(key)
            if stopping { return [] }
            state = .audio(id: id, stopping: true)
            return [.stopAudio(id: id)]
        case .gathering(let gather, var digits, let started, _):
            if key == gather.finishKey { return endGather(gather, digits, at: now) }
            digits.append(key)
            if digits.count >= gather.maxDigits { return endGather(gather, digits, at: now) }
            state = .gathering(gather, digits: digits, started: started, lastKey: now)
            return []
        case .recording(let record, let file, _):
            guard key == record.finishKey else { return [] }
            return [.finishRecording(file: file)] + run(at: now)
        case .idle:
            keep(key)
            return []
        case .transferring, .done:
            return []
        }
    }

    /// Audio `id` has played (or was stopped).
    public mutating func audioPlayed(_ id: Int, at now: NIODeadline) -> [Action] {
        guard case .audio(id, _) = state else { return [] }
        return run(at: now)
    }

    /// The timer armed for `deadline` fired (or any time later).
    public mutating func timerFired(at now: NIODeadline) -> [Action] {
        guard let deadline, now >= deadline else { return [] }
        switch state {
        case .gathering(let gather, let digits, _, _):
            return endGather(gather, digits, at: now)
        case .recording(_, let file, _):
            return [.finishRecording(file: file)] + run(at: now)
        case .idle, .audio, .transferring, .done:
            return []
        }
    }

    /// The transfer the flow asked for is over. Completed: the caller is with the human and the flow is done (the
    /// gateway ends or bridges the call). Failed or refused: the call is the flow's again, at `onFailure`.
    public mutating func transferEnded(completed: Bool, at now: NIODeadline) -> [Action] {
        guard case .transferring(let onFailure) = state else { return [] }
        if completed {
            state = .done
            return []
        }
        if let onFailure { next = onFailure }
        return run(at: now)
    }

    /// The call ended: a recording under way is still written.
    public mutating func callEnded() -> [Action] {
        defer { state = .done }
        if case .recording(_, let file, _) = state { return [.finishRecording(file: file)] }
        return []
    }

    // MARK: - Running steps

    private mutating func keep(_ key: Character) {
        if typeAhead.count < Self.typeAheadLimit { typeAhead.append(key) }
    }

    private mutating func endGather(_ gather: CallFlow.Gather, _ digits: String, at now: NIODeadline) -> [Action] {
        variables[gather.variable] = digits
        return run(at: now)
    }

    /// Runs steps from `next` until one waits (audio, keys, a recording) or the flow ends.
    private mutating func run(at now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        state = .idle
        while true {
            guard next < flow.steps.count else { return finish(actions, reason: "flow finished") }
            stepsRun += 1
            guard stepsRun <= flow.maxSteps else {
                return finish(actions, reason: "flow ran more than \(flow.maxSteps) steps (max_steps)")
            }
            let step = flow.steps[next]
            next += 1
            switch step {
            case .say(let text):
                state = .audio(id: nextAudioID, stopping: false)
                actions.append(.say(text.render(variables), id: nextAudioID))
                nextAudioID += 1
                return actions
            case .play(let prompt):
                state = .audio(id: nextAudioID, stopping: false)
                actions.append(.play(prompt: prompt, id: nextAudioID))
                nextAudioID += 1
                return actions
            case .gather(let gather):
                state = .gathering(gather, digits: "", started: now, lastKey: nil)
                // Keys pressed ahead (over a prompt) count first; what this gather leaves waits for the next one.
                while case .gathering = state, !typeAhead.isEmpty {
                    let key = typeAhead.removeFirst()
                    actions += self.key(key, at: now)
                }
                return actions
            case .branch(let branch):
                let value = variables[branch.variable] ?? ""
                if let target = branch.cases[value] ?? branch.otherwise { next = target }
            case .record(let record):
                recordingsMade += 1
                let file = "\(callSid)-\(recordingsMade).wav"
                if let variable = record.variable { variables[variable] = file }
                state = .recording(record, file: file, started: now)
                actions.append(.startRecording(maxDuration: record.maxDuration))
                return actions
            case .transfer(let transfer):
                state = .transferring(onFailure: transfer.onFailure)
                let request = TransferRequest(target: transfer.target.render(variables), headers: transfer.headers, mode: transfer.mode)
                actions.append(.transfer(request))
                return actions
            case .hangUp(let reason):
                return finish(actions, reason: reason)
            case .goto(let target):
                next = target
            case .set(let variable, let value):
                variables[variable] = value.render(variables)
            }
        }
    }

    private mutating func finish(_ actions: [Action], reason: String) -> [Action] {
        state = .done
        return actions + [.hangUp(reason: reason)]
    }
}
