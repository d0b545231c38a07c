/// One RFC 4733 telephone-event payload (the 4-byte "named event" form).
public struct TelephoneEvent: Sendable, Hashable {
    /// Event code: 0-9 digits, 10 `*`, 11 `#`, 12-15 A-D; higher codes are other named events.
    public var event: UInt8
    /// The E bit: this packet reports the end of the event.
    public var isEnd: Bool
    /// Power level in -dBm0 (0...63).
    public var volume: UInt8
    /// Duration so far, in RTP timestamp units.
    public var duration: UInt16

    public init(event: UInt8, isEnd: Bool, volume: UInt8, duration: UInt16) {
        self.event = event
        self.isEnd = isEnd
        self.volume = volume
        self.duration = duration
    }

    /// Parses the first event block of a telephone-event payload; `nil` if shorter than 4 bytes.
    public static func parse(_ payload: UnsafeRawBufferPointer) -> TelephoneEvent? {
        guard payload.count >= 4 else { return nil }
        return TelephoneEvent(
            event: payload[0], isEnd: payload[1] & 0x80 != 0, volume: payload[1] & 0x3F,
            duration: UInt16(payload[2]) << 8 | UInt16(payload[3]))
    }

    /// Writes the 4-byte payload; returns 4, or 0 if `buffer` is too small.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard buffer.count >= 4 else { return 0 }
        buffer[0] = event
        buffer[1] = (isEnd ? 0x80 : 0) | (volume & 0x3F)
        buffer[2] = UInt8(duration >> 8)
        buffer[3] = UInt8(duration & 0xFF)
        return 4
    }

    /// The DTMF key for event codes 0-15 (`0-9 * # A-D`), `nil` for other events.
    public var character: Character? { Self.character(forEvent: event) }

    static func character(forEvent event: UInt8) -> Character? {
        switch event {
        case 0...9: return Character(Unicode.Scalar(UInt8(ascii: "0") + event))
        case 10: return "*"
        case 11: return "#"
        case 12...15: return Character(Unicode.Scalar(UInt8(ascii: "A") + event - 12))
        default: return nil
        }
    }

    /// The event code of a DTMF key (`0-9 * # A-D`, also lower-case `a-d`), `nil` for anything else.
    static func code(for character: Character) -> UInt8? {
        guard let ascii = character.asciiValue else { return nil }
        switch ascii {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return ascii - UInt8(ascii: "0")
        case UInt8(ascii: "*"): return 10
        case UInt8(ascii: "#"): return 11
        case UInt8(ascii: "A")...UInt8(ascii: "D"): return ascii - UInt8(ascii: "A") + 12
        case UInt8(ascii: "a")...UInt8(ascii: "d"): return ascii - UInt8(ascii: "a") + 12
        default: return nil
        }
    }
}

/// One DTMF key press, reported once.
public struct DTMFDigit: Sendable, Hashable, CustomStringConvertible {
    /// `0-9`, `*`, `#` or `A-D`.
    public var character: Character
    /// The duration known when the press was reported (from the first packet seen of it, so usually short:
    /// presses are reported as soon as they start, not when they end).
    public var durationMs: Int

    public init(character: Character, durationMs: Int) {
        self.character = character
        self.durationMs = durationMs
    }

    /// Deliberately says nothing about which key it was: digits may be card numbers (PCI).
    public var description: String { "DTMFDigit(\(durationMs) ms)" }
}

/// Turns a stream of RFC 4733 telephone-event packets into key presses, each reported exactly once.
///
/// A press is identified by its RTP timestamp (all packets of one event share the event's start timestamp)
/// together with its event code — not by the marker bit, which is lost whenever the first packet is. The first
/// packet seen of a new press reports it, whether it is a start, continuation or end packet; continuations,
/// the (usually triple) end packets and retransmissions of a press already reported are ignored. The same
/// key pressed again has a new timestamp and so is a new press. A few recent presses are remembered so that
/// late packets of an earlier press after a new one has begun do not report it twice.
///
/// A pure value: no I/O, no allocation.
public struct RFC4733Receiver: Sendable {
    private struct Key: Equatable {
        var timestamp: UInt32
        var event: UInt8
    }

    /// The last few presses seen, newest at `recent.3` (a tuple: no heap storage).
    private var recent: (Key?, Key?, Key?, Key?) = (nil, nil, nil, nil)
    /// RTP clock rate of the telephone-event payload type, to turn durations into milliseconds.
    public var clockRate: Int

    public init(clockRate: Int = 8000) {
        self.clockRate = clockRate
    }

    /// Feeds one telephone-event packet.
    ///
    /// - Parameters:
    ///   - header: the packet's RTP header (its timestamp identifies the press).
    ///   - payload: the RTP payload.
    /// - Returns: the press if this packet is the first seen of a new one; `nil` otherwise, and for
    ///   malformed payloads and events that are not DTMF keys (codes above 15).
    public mutating func receive(header: RTPHeader, payload: UnsafeRawBufferPointer) -> DTMFDigit? {
        guard let event = TelephoneEvent.parse(payload), let character = event.character else { return nil }
        let key = Key(timestamp: header.timestamp, event: event.event)
        if recent.0 == key || recent.1 == key || recent.2 == key || recent.3 == key { return nil }
        recent = (recent.1, recent.2, recent.3, key)
        let rate = max(clockRate, 1)
        return DTMFDigit(character: character, durationMs: Int(event.duration) * 1000 / rate)
    }

    /// Forgets all presses seen (for a new stream, e.g. after an SSRC change).
    public mutating func reset() {
        recent = (nil, nil, nil, nil)
    }
}
