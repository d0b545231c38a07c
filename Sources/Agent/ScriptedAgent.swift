/// The embedded demo agent; confined to the call's event loop like every `CallAgent` (it does no I/O of its own).
///
/// The script: play the greeting when the call starts; read back each digit the caller presses by playing that
/// digit's prompt; on `#`, play the goodbye, queue a mark behind it, and hang up once the mark has played.
/// Caller audio is ignored. Prompts are 8 kHz 16-bit mono PCM, made by whoever builds the agent (WAV files,
/// espeak-ng, or test tones).
public final class ScriptedAgent: CallAgent {
    /// Reason given to `agentHangUp` when the script ends.
    public static let finishedReason = "scripted agent finished"

    private let greeting: [Int16]
    private let digits: [Character: [Int16]]
    private let goodbye: [Int16]

    private weak var control: AgentCallControl?
    /// The mark queued behind the goodbye; set once `#` was pressed.
    private var hangUpMark: Int?
    private var nextMarkID = 1

    /// - Parameters:
    ///   - greeting: played when the call starts.
    ///   - digits: the readback prompt for each key; keys without a prompt are ignored (`#` never needs one).
    ///   - goodbye: played after `#`, before the hang-up.
    public init(greeting: [Int16], digits: [Character: [Int16]], goodbye: [Int16]) {
        self.greeting = greeting
        self.digits = digits
        self.goodbye = goodbye
    }

    public func start(context: CallContext, control: AgentCallControl) {
        self.control = control
        self.play(self.greeting)
    }

    public func callerAudio(_ samples: UnsafeBufferPointer<Int16>) {}

    public func callerDigit(_ digit: Character) {
        guard self.hangUpMark == nil, let control = self.control else { return }
        if digit == "#" {
            self.play(self.goodbye)
            let id = self.nextMarkID
            self.nextMarkID += 1
            self.hangUpMark = id
            control.agentMark(id)  // may report the mark played at once
        } else if let prompt = self.digits[digit] {
            self.play(prompt)
        }
    }

    public func markPlayed(_ id: Int) {
        guard id == self.hangUpMark, let control = self.control else { return }
        self.control = nil
        control.agentHangUp(reason: Self.finishedReason)
    }

    public func stop(reason: String) {
        self.control = nil
    }

    private func play(_ prompt: [Int16]) {
        guard !prompt.isEmpty, let control = self.control else { return }
        prompt.withUnsafeBufferPointer { control.agentPlay($0) }
    }
}

@available(*, unavailable)
extension ScriptedAgent: Sendable {}
