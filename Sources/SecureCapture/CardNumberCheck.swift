/// The optional card-number signal: the Luhn checksum (ISO/IEC 7812-1 annex B) and a PAN length of 12–19.
/// A signal for the agent ("that doesn't look like a card number, please try again"), not a validation the
/// payment sink relies on.
enum CardNumberCheck {
    static let panLengths = 12...19

    /// Whether `keys` (ASCII) are all digits, 12–19 of them, with a valid Luhn check digit.
    static func isPlausiblePAN(_ keys: UnsafeBufferPointer<UInt8>) -> Bool {
        guard panLengths.contains(keys.count) else { return false }
        return luhnValid(keys)
    }

    /// The Luhn check over ASCII digits; false for anything that is not a digit.
    static func luhnValid(_ keys: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !keys.isEmpty else { return false }
        var sum = 0
        for (offset, ascii) in keys.reversed().enumerated() {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(ascii) else { return false }
            var value = Int(ascii - UInt8(ascii: "0"))
            if offset % 2 == 1 {
                value *= 2
                if value > 9 { value -= 9 }
            }
            sum += value
        }
        return sum % 10 == 0
    }
}
