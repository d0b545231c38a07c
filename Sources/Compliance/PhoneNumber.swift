/// An E.164 telephone number (`+` and 8–15 digits), checked harder inside the NANP (+1): a valid area code and
/// exchange (both [2-9]XX), because the calling-window rules key on the area code.
public struct PhoneNumber: Sendable, Hashable, CustomStringConvertible {
    public let e164: String

    public init(_ text: String) throws(PhoneNumberError) {
        guard text.hasPrefix("+") else { throw PhoneNumberError(reason: "must start with '+' (E.164)") }
        let digits = text.dropFirst()
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw PhoneNumberError(reason: "only digits may follow '+'") }
        guard (8...15).contains(digits.count) else { throw PhoneNumberError(reason: "E.164 has 8 to 15 digits, got \(digits.count)") }
        guard digits.first != "0" else { throw PhoneNumberError(reason: "a country code never starts with 0") }
        if digits.first == "1" {
            let national = Array(digits.dropFirst())
            guard national.count == 10 else { throw PhoneNumberError(reason: "a +1 number has 10 digits after the 1") }
            guard national[0] >= "2", national[3] >= "2" else {
                throw PhoneNumberError(reason: "NANP area code and exchange start with 2-9")
            }
        }
        e164 = text
    }

    /// The NANP area code (NPA), or nil outside +1.
    public var areaCode: String? {
        e164.hasPrefix("+1") ? String(e164.dropFirst(2).prefix(3)) : nil
    }

    public var description: String { e164 }
}

public struct PhoneNumberError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}
