/// Keys to send, as an agent writes them: `0-9 * # A-D` (either case) and `w` for a 500 ms pause.
/// What the SIP INFO and in-band senders play; checked whole before anything is sent.
public struct DTMFSequence: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        /// A key, by its RFC 4733 event code (0-9, 10 `*`, 11 `#`, 12-15 A-D).
        case key(UInt8)
        case pause
    }

    public enum Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        case notAKey(position: Int)
        case tooLong

        public var description: String {
            switch self {
            case .notAKey(let position): "character \(position + 1) is neither a DTMF key nor w"
            case .tooLong: "more than \(DTMFSequence.maximumLength) keys and pauses"
            }
        }
    }

    /// As many as the RFC 4733 sender queues.
    public static let maximumLength = RFC4733Sender.maximumQueued
    public static let pauseMilliseconds = 500

    public let steps: [Step]

    public init(_ text: String) throws(Invalid) {
        guard text.count <= Self.maximumLength else { throw .tooLong }
        var steps: [Step] = []
        for (position, character) in text.enumerated() {
            if character == "w" || character == "W" {
                steps.append(.pause)
            } else if let code = TelephoneEvent.code(for: character) {
                steps.append(.key(code))
            } else {
                throw .notAKey(position: position)
            }
        }
        self.steps = steps
    }

    /// The key of an event code, for SIP INFO's `Signal=`.
    public static func character(forEvent code: UInt8) -> Character {
        TelephoneEvent.character(forEvent: code) ?? "?"
    }
}
