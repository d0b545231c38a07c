import Agent

/// Why a transfer request was refused before anything was sent; safe to send back to the agent (it never
/// quotes a header value).
struct TransferRefusal: Error, CustomStringConvertible, Equatable {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Where a transfer goes, checked: a SIP URI that can stand in Refer-To and as a Request-URI, or a number that
/// goes out through a trunk.
enum TransferTarget: Sendable, Equatable {
    case uri(String)
    case number(String)

    static let maximumURILength = 256

    /// Throws for anything SIP syntax could read as more structure than one URI: spaces, angle brackets,
    /// quotes, URI headers (`?`, use `headers`), control characters, non-ASCII.
    static func parse(_ text: String) throws(TransferRefusal) -> TransferTarget {
        let lower = text.lowercased()
        guard lower.hasPrefix("sip:") || lower.hasPrefix("sips:") else {
            guard DialableNumber.isValid(text) else {
                throw TransferRefusal("transfer target must be a sip:/sips: URI or a dialable number (digits, optional leading +)")
            }
            return .number(text)
        }
        guard text.utf8.count <= maximumURILength else { throw TransferRefusal("transfer target longer than \(maximumURILength) characters") }
        let forbidden: Set<UInt8> = Set("<>\"?\\".utf8)
        guard text.utf8.allSatisfy({ (0x21...0x7E).contains($0) && !forbidden.contains($0) }) else {
            throw TransferRefusal("transfer target has characters a SIP URI cannot carry here (space, <, >, \", ?, \\, controls)")
        }
        guard let colon = text.firstIndex(of: ":"), text[text.index(after: colon)...].contains(where: { $0 != "@" && $0 != ";" }) else {
            throw TransferRefusal("transfer target has no host")
        }
        return .uri(text)
    }

    /// For records and logs: the URI without a password in its user part, or the number.
    var redacted: String {
        switch self {
        case .number(let number):
            return number
        case .uri(let uri):
            guard let at = uri.firstIndex(of: "@"), let scheme = uri.firstIndex(of: ":") else { return uri }
            let user = uri[uri.index(after: scheme)..<at]
            guard let password = user.firstIndex(of: ":") else { return uri }
            return String(uri[...scheme]) + user[..<password] + uri[at...]
        }
    }
}

/// The headers an agent may carry to the target: `User-to-User` and `X-` headers, checked so that none can
/// add a header or a line of its own.
enum TransferHeaders {
    static let maximumCount = 8
    static let maximumNameLength = 64
    /// A User-to-User value of 128 octets is 256 hex digits plus its parameters.
    static let maximumValueLength = 512
    static let maximumTotalLength = 2048

    static func validate(_ headers: [TransferHeader]) throws(TransferRefusal) {
        guard headers.count <= maximumCount else { throw TransferRefusal("at most \(maximumCount) transfer headers") }
        var total = 0
        for header in headers {
            let name = header.name
            guard name.utf8.count <= maximumNameLength, isAllowedName(name) else {
                throw TransferRefusal("transfer header '\(name.prefix(maximumNameLength).filter { $0.isASCII && !$0.isNewline })' is not allowed (User-to-User or X-…, letters, digits and -)")
            }
            guard header.value.utf8.count <= maximumValueLength else {
                throw TransferRefusal("transfer header \(name) is longer than \(maximumValueLength) bytes")
            }
            // Printable ASCII only: no CR or LF (a second header), no NUL, no other control character.
            guard header.value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
                throw TransferRefusal("transfer header \(name) has a character other than printable ASCII")
            }
            total += name.utf8.count + header.value.utf8.count
        }
        guard total <= maximumTotalLength else { throw TransferRefusal("transfer headers longer than \(maximumTotalLength) bytes in all") }
    }

    private static func isAllowedName(_ name: String) -> Bool {
        let lower = name.lowercased()
        let tokenOnly = name.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") }
        return tokenOnly && (lower == "user-to-user" || (lower.hasPrefix("x-") && lower.count > 2))
    }

    /// Header lines for an INVITE, `Name: value`.
    static func lines(_ headers: [TransferHeader]) -> [String] {
        headers.map { "\($0.name): \($0.value)" }
    }

    /// `uri` with the headers as URI headers (RFC 3261 §19.1.1), values percent-encoded: for Refer-To.
    static func uri(_ uri: String, carrying headers: [TransferHeader]) -> String {
        guard !headers.isEmpty else { return uri }
        return uri + "?" + headers.map { "\($0.name)=\(percentEncoded($0.value))" }.joined(separator: "&")
    }

    private static func percentEncoded(_ value: String) -> String {
        var result = ""
        for byte in value.utf8 {
            if byte.isASCIIAlphanumeric || "-_.!~*'()".utf8.contains(byte) {
                result.append(Character(Unicode.Scalar(byte)))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self)
    }
}
