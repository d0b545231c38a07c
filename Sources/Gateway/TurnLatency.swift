import Media
import NIOCore

/// Time to first audio (TTFA) per caller turn: from the moment the caller stopped talking (the first silent frame
/// of a pause that lasted the route's `turn_end_ms`) to the first agent audio the gateway received after it.
///
/// Agent audio that arrives during the pause, before the pause has lasted long enough to end the turn, counts
/// once the turn ends (an agent with a shorter end-of-turn wait than ours). A turn the caller resumes before
/// the agent answers is not counted. Pure value: decisions and times come in, milliseconds go out.
struct TurnLatency: Sendable {
    /// Turns recorded at most (a day-long call keeps the first thousand).
    static let maxTurns = 1000

    private var turns: TurnDetector
    /// The caller's turn ended here and the agent has not answered yet.
    private var awaitingSince: NIODeadline?
    /// The caller is pausing and the agent already sent audio, at this time.
    private var pausing = false
    private var audioDuringPause: NIODeadline?
    /// One entry per answered turn, in order.
    private(set) var milliseconds: [Int] = []

    init(turnEndMilliseconds: Int) {
        turns = TurnDetector(endSilenceMilliseconds: turnEndMilliseconds)
        milliseconds.reserveCapacity(64)
    }

    /// One 20 ms frame of caller audio, judged by the voice activity detector, handled at `time`.
    mutating func callerFrame(isSpeech: Bool, at time: NIODeadline) {
        switch turns.frame(isSpeech: isSpeech, at: time) {
        case .none:
            break
        case .speechStarted:
            awaitingSince = nil
        case .paused:
            pausing = true
            audioDuringPause = nil
        case .resumed:
            pausing = false
            audioDuringPause = nil
        case .turnEnded(let end):
            pausing = false
            if let early = audioDuringPause {
                record(from: end, to: early)
            } else {
                awaitingSince = end
            }
            audioDuringPause = nil
        }
    }

    /// The agent sent audio at `time`.
    mutating func agentAudio(at time: NIODeadline) {
        if let since = awaitingSince {
            record(from: since, to: time)
            awaitingSince = nil
        } else if pausing, audioDuringPause == nil {
            audioDuringPause = time
        }
    }

    private mutating func record(from end: NIODeadline, to audio: NIODeadline) {
        guard milliseconds.count < Self.maxTurns else { return }
        milliseconds.append(Int(max(0, (audio - end).nanoseconds / 1_000_000)))
    }

    /// The nearest-rank percentile `p` (0–100) of `values`; nil when there are none.
    static func percentile(_ p: Int, of values: [Int]) -> Int? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = (p * sorted.count + 99) / 100
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
