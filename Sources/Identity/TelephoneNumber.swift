/// Telephone-number canonicalisation for comparing PASSporT `orig`/`dest` with SIP identities (RFC 8224 §8.3):
/// digits only, no `+`, no visual separators, URI wrapping removed.
public enum TelephoneNumber {
    /// `"Alice" <sip:+1 (202) 555-0100@host;user=phone>`, `tel:+1-202-555-0100`, `+12025550100` → `12025550100`.
    /// Returns nil when what remains is not 1…20 digits (e.g. an alphanumeric SIP user).
    public static func canonical(_ text: String) -> String? {
        guard text.utf8.count <= 1024 else { return nil }
        var value = Substring(text).trimmingSpaces()
        if let open = value.firstIndex(of: "<"), let close = value[open...].firstIndex(of: ">") {
            value = value[value.index(after: open)..<close].trimmingSpaces()
        }
        let lower = value.lowercased()
        for scheme in ["sips:", "sip:", "tel:"] where lower.hasPrefix(scheme) {
            value = value.dropFirst(scheme.count)
            break
        }
        if let at = value.firstIndex(of: "@") { value = value[..<at] }
        if let semicolon = value.firstIndex(of: ";") { value = value[..<semicolon] }
        if let question = value.firstIndex(of: "?") { value = value[..<question] }
        var digits = ""
        for character in value {
            switch character {
            case "0"..."9": digits.append(character)
            case "+", "-", ".", "(", ")", " ", "\t": continue
            default: return nil
            }
        }
        guard (1...20).contains(digits.count) else { return nil }
        return digits
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var value = self
        while let first = value.first, first == " " || first == "\t" { value = value.dropFirst() }
        while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
        return value
    }
}
