/// DTMF carried in SIP INFO bodies (not standardised; what carriers and PBXs send):
/// `application/dtmf-relay` (`Signal=5` / `Duration=160` lines; Signal may be 10/11 for `*`/`#`) and
/// `application/dtmf` (the bare key).
public enum DTMFInfo {
    public static let supportedTypes = ["application/dtmf-relay", "application/dtmf"]

    /// One key press, or why the body is not one.
    public enum Parsed: Sendable, Equatable {
        case digit(Character, durationMs: Int?)
        /// A body type we do not read (answer 415).
        case unsupportedType
        /// The right type, but no key in it (answer 400).
        case malformed(String)
    }

    public static func parse(contentType: String?, body: String) -> Parsed {
        switch contentType?.lowercased() {
        case "application/dtmf-relay":
            var signal: Character?
            var duration: Int?
            for line in body.split(whereSeparator: \.isNewline) {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { continue }
                switch parts[0].lowercased() {
                case "signal": signal = key(parts[1])
                case "duration": duration = Int(parts[1]).map { $0 }
                default: continue
                }
            }
            guard let signal else { return .malformed("no valid Signal= line") }
            // Duration is in milliseconds in practice (RFC-less; Cisco's definition).
            return .digit(signal, durationMs: duration.map { min(max($0, 0), 60_000) })
        case "application/dtmf":
            guard let key = key(body.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                return .malformed("body is not a DTMF key")
            }
            return .digit(key, durationMs: nil)
        default:
            return .unsupportedType
        }
    }

    /// `0-9 * # A-D` (either case), or the event codes 10 and 11 some senders use for `*` and `#`.
    static func key(_ text: String) -> Character? {
        switch text {
        case "10": return "*"
        case "11": return "#"
        case "12", "13", "14", "15": return Character(Unicode.Scalar(UInt8(ascii: "A") + UInt8(text)! - 12))
        default:
            guard text.count == 1, let character = text.uppercased().first,
                  "0123456789*#ABCD".contains(character) else { return nil }
            return character
        }
    }
}
