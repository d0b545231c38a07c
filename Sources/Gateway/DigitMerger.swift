import NIOCore

/// One digit stream from several DTMF transports. Carriers sometimes send a press both as RFC 4733 events and as
/// SIP INFO: the same key from a *different* transport within `window` of the last accepted one is the same press.
/// Presses on one transport are never merged (that transport de-duplicates its own retransmissions).
struct DigitMerger {
    enum Source: Sendable, Equatable {
        case rfc4733, info
    }

    /// Long enough for signalling to trail media by a few hundred ms, shorter than two human presses of one key
    /// sent over two transports could ever be.
    static let window = TimeAmount.milliseconds(500)

    private var last: (digit: Character, source: Source, at: NIODeadline)?

    /// Whether `digit` is a new press (and remembers it), given when it arrived.
    mutating func accept(_ digit: Character, from source: Source, at now: NIODeadline) -> Bool {
        if let last, last.source != source, last.digit == digit, now - last.at < Self.window { return false }
        last = (digit, source, now)
        return true
    }
}
