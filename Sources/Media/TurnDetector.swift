import NIOCore

/// Finds the caller's turns in a stream of per-frame speech decisions: a turn starts with enough speech and ends
/// after `endSilence` of non-speech; the end is dated at its first silent frame, when the caller stopped talking.
///
/// Pure value: time comes in with each frame, so tests feed it without a clock.
public struct TurnDetector: Sendable {
    public enum Event: Sendable, Equatable {
        /// Nothing changed.
        case none
        /// Speech long enough to be a turn began (`minSpeech` of it).
        case speechStarted
        /// The caller fell silent mid-turn; the turn ends if the silence lasts.
        case paused(at: NIODeadline)
        /// Speech again before the pause ended the turn.
        case resumed
        /// The pause lasted `endSilence`: the turn ended at the pause's start.
        case turnEnded(at: NIODeadline)
    }

    private enum State: Sendable {
        case silent
        /// Speech frames so far, not yet enough to be a turn.
        case onset(frames: Int)
        case speaking
        /// Silent frames since `since`, the first of them.
        case pausing(frames: Int, since: NIODeadline)
    }

    /// Speech frames that start a turn (a click or a cough is shorter).
    public let minSpeechFrames: Int
    /// Silent frames that end a turn.
    public let endSilenceFrames: Int
    private var state = State.silent

    /// - Parameters:
    ///   - frameMilliseconds: the length of one frame.
    ///   - minSpeechMilliseconds: speech needed before a turn counts.
    ///   - endSilenceMilliseconds: silence that ends a turn.
    public init(frameMilliseconds: Int = 20, minSpeechMilliseconds: Int = 60, endSilenceMilliseconds: Int) {
        minSpeechFrames = max(1, minSpeechMilliseconds / frameMilliseconds)
        endSilenceFrames = max(1, endSilenceMilliseconds / frameMilliseconds)
    }

    /// One frame's decision, with the time the frame was handled.
    public mutating func frame(isSpeech: Bool, at time: NIODeadline) -> Event {
        switch (state, isSpeech) {
        case (.silent, false):
            return .none
        case (.silent, true):
            return onset(frames: 1)
        case (.onset(let frames), true):
            return onset(frames: frames + 1)
        case (.onset, false):
            state = .silent
            return .none
        case (.speaking, true):
            return .none
        case (.speaking, false):
            state = .pausing(frames: 1, since: time)
            if endSilenceFrames == 1 {
                state = .silent
                return .turnEnded(at: time)
            }
            return .paused(at: time)
        case (.pausing, true):
            state = .speaking
            return .resumed
        case (.pausing(let frames, let since), false):
            if frames + 1 >= endSilenceFrames {
                state = .silent
                return .turnEnded(at: since)
            }
            state = .pausing(frames: frames + 1, since: since)
            return .none
        }
    }

    private mutating func onset(frames: Int) -> Event {
        guard frames >= minSpeechFrames else {
            state = .onset(frames: frames)
            return .none
        }
        state = .speaking
        return .speechStarted
    }
}
