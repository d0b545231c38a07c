#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The common agent message — `media` with a base64 payload — read without Foundation: no `Data`, no
/// `JSONDecoder`, no allocation, one pass over the bytes.
///
/// It accepts only what it fully understands: a JSON object whose `event` is `"media"` and whose `media` object
/// has a `payload` string of standard base64 (with padding), and whose other members are well-formed JSON values;
/// keys and the payload without escapes. Anything else — another event, an escape, odd whitespace in the payload,
/// malformed JSON — returns nil, and the message takes the general path (`JSONDecoder`), which decides what it
/// is. So both paths agree on every message the fast one takes.
enum AgentMediaMessage {
    /// Decodes the payload of a `media` message into `output`.
    /// - Returns: the payload's byte count, or nil if the message is not one this reader takes, or `output` is
    ///   too small (at least `bytes.count * 3 / 4` is always enough).
    static func decodePayload(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        var reader = Reader(bytes: bytes)
        var isMedia = false
        var payload: Range<Int>?
        let complete = reader.object { key, reader in
            if equals(key, "event") {
                guard let value = reader.plainString() else { return false }
                isMedia = equals(value, "media")
                return true
            }
            if equals(key, "media") {
                return reader.object { key, reader in
                    guard equals(key, "payload") else { return reader.skipValue() }
                    // Any escape or control character in it fails the base64 decoding below.
                    guard let range = reader.stringRangeToQuote() else { return false }
                    payload = range
                    return true
                }
            }
            return reader.skipValue()
        }
        guard complete, reader.atEndIgnoringWhitespace(), isMedia, let payload else { return nil }
        return Base64.decode(UnsafeRawBufferPointer(rebasing: bytes[payload]), into: output)
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount && memcmp(bytes.baseAddress!, literal.utf8Start, bytes.count) == 0
    }

    /// A cursor over JSON text; every method returns false/nil on anything it does not take.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        mutating func skipWhitespace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }

        mutating func atEndIgnoringWhitespace() -> Bool {
            skipWhitespace()
            return index == bytes.count
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// `{ "key": value, … }`, calling `member` with the reader at each value; it must consume the value.
        mutating func object(_ member: (UnsafeRawBufferPointer, inout Reader) -> Bool) -> Bool {
            guard consume(UInt8(ascii: "{")) else { return false }
            if consume(UInt8(ascii: "}")) { return true }
            repeat {
                guard let key = plainString(), consume(UInt8(ascii: ":")) else { return false }
                skipWhitespace()
                guard member(key, &self) else { return false }
            } while consume(UInt8(ascii: ","))
            return consume(UInt8(ascii: "}"))
        }

        /// A string without escapes or control characters: the range of its content.
        mutating func plainStringRange() -> Range<Int>? {
            guard consume(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return start..<(index - 1)
                }
                if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
                index += 1
            }
            return nil
        }

        /// A string's content up to the next quote, unchecked (found by `memchr`): for the payload, whose decoding
        /// refuses every byte that is not base64, a backslash included.
        mutating func stringRangeToQuote() -> Range<Int>? {
            guard consume(UInt8(ascii: "\"")), index < bytes.count,
                  let quote = memchr(bytes.baseAddress! + index, Int32(UInt8(ascii: "\"")), bytes.count - index) else { return nil }
            let start = index
            index = bytes.baseAddress!.distance(to: UnsafeRawPointer(quote)) + 1
            return start..<(index - 1)
        }

        mutating func plainString() -> UnsafeRawBufferPointer? {
            plainStringRange().map { UnsafeRawBufferPointer(rebasing: bytes[$0]) }
        }

        /// Any value: a plain string, a number, true/false/null, or an object or array of such (nesting limited).
        mutating func skipValue(depth: Int = 0) -> Bool {
            skipWhitespace()
            guard index < bytes.count, depth < 16 else { return false }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                return plainStringRange() != nil
            case UInt8(ascii: "{"):
                return object { _, reader in reader.skipValue(depth: depth + 1) }
            case UInt8(ascii: "["):
                index += 1
                if consume(UInt8(ascii: "]")) { return true }
                repeat {
                    guard skipValue(depth: depth + 1) else { return false }
                } while consume(UInt8(ascii: ","))
                return consume(UInt8(ascii: "]"))
            default:
                return literal()
            }
        }

        /// A number or true/false/null, checked strictly enough that nothing malformed passes as well-formed.
        private mutating func literal() -> Bool {
            for word in ["true", "false", "null"] where bytes[index...].starts(with: word.utf8) {
                index += word.utf8.count
                return true
            }
            // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(leadingZeroAllowed: false) else { return false }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard digits(leadingZeroAllowed: true) else { return false }
            }
            if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard digits(leadingZeroAllowed: true) else { return false }
            }
            return true
        }

        private mutating func digits(leadingZeroAllowed: Bool) -> Bool {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            guard index > start else { return false }
            return leadingZeroAllowed || bytes[start] != UInt8(ascii: "0") || index == start + 1
        }
    }
}

/// Standard base64 (RFC 4648 §4) with padding, as Twilio sends it.
enum Base64 {
    /// Decodes `text` into `output`; nil on a character outside the alphabet, bad padding, a length that is not a
    /// multiple of 4, or too little room.
    static func decode(_ text: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard text.count % 4 == 0 else { return nil }
        guard text.count > 0 else { return 0 }
        var padding = 0
        if text[text.count - 1] == UInt8(ascii: "=") { padding += 1 }
        if text[text.count - 2] == UInt8(ascii: "=") { padding += 1 }
        let count = text.count / 4 * 3 - padding
        guard count <= output.count else { return nil }
        return values.withUnsafeBufferPointer { values in
            var o = 0
            var i = 0
            // Every group but the last has no padding.
            while i + 4 < text.count {
                let a = UInt32(values[Int(text[i])]), b = UInt32(values[Int(text[i + 1])])
                let c = UInt32(values[Int(text[i + 2])]), d = UInt32(values[Int(text[i + 3])])
                guard a | b | c | d < 64 else { return nil }
                let v = a << 18 | b << 12 | c << 6 | d
                output[o] = UInt8(truncatingIfNeeded: v >> 16)
                output[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                output[o + 2] = UInt8(truncatingIfNeeded: v)
                o += 3
                i += 4
            }
            let a = UInt32(values[Int(text[i])]), b = UInt32(values[Int(text[i + 1])])
            let c = padding == 2 ? 0 : UInt32(values[Int(text[i + 2])])
            let d = padding >= 1 ? 0 : UInt32(values[Int(text[i + 3])])
            guard a | b | c | d < 64 else { return nil }
            let v = a << 18 | b << 12 | c << 6 | d
            output[o] = UInt8(truncatingIfNeeded: v >> 16)
            if o + 1 < count { output[o + 1] = UInt8(truncatingIfNeeded: v >> 8) }
            if o + 2 < count { output[o + 2] = UInt8(truncatingIfNeeded: v) }
            return count
        }
    }

    /// The 6-bit value of each byte as a base64 character; 0xFF for the bytes that are not.
    private static let values: [UInt8] = (0...255).map { byte -> UInt8 in
        switch UInt8(byte) {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt8(byte) - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt8(byte) - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(byte) - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: 0xFF
        }
    }
}
