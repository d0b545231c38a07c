/// One SIP `Identity` header value (RFC 8224 §4):
/// `<compact PASSporT>;info=<https://…>;alg=ES256;ppt=shaken[;other=params]`.
public struct IdentityHeader: Sendable, Equatable {
    /// Longest header value accepted; real SHAKEN headers are 450–700 bytes.
    public static let maximumLength = 8192

    /// The compact JWS, exactly as received (its first two parts are the signed bytes).
    public var passport: String
    /// The `info` URI with the angle brackets removed; nil when the parameter is absent.
    public var info: String?
    /// The `alg` parameter; nil when absent (RFC 8224: absent means ES256).
    public var alg: String?
    /// The `ppt` parameter without quotes; nil when absent.
    public var ppt: String?
    /// Every parameter in order, names lower-cased, values as written (quotes and brackets kept).
    public var parameters: [Parameter]
    /// Non-fatal oddities seen while parsing (e.g. `info` without angle brackets).
    public var warnings: [String]

    public struct Parameter: Sendable, Equatable {
        public var name: String
        public var value: String?
    }

    /// Parses a header value; a malformed one gives the reason instead of throwing.
    public static func parse(_ value: String) -> Result<IdentityHeader, IdentityReason> {
        guard value.utf8.count <= maximumLength else {
            return .failure(.init(.identityHeaderMalformed, "Identity header longer than \(maximumLength) bytes"))
        }
        let bytes = Array(value.utf8)
        var index = 0
        func skipSpace() { while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 } }
        skipSpace()
        let tokenStart = index
        while index < bytes.count, bytes[index] != UInt8(ascii: ";"), bytes[index] != 0x20, bytes[index] != 0x09 {
            index += 1
        }
        let token = String(decoding: bytes[tokenStart..<index], as: UTF8.self)
        guard !token.isEmpty else {
            return .failure(.init(.identityHeaderMalformed, "Identity header has no PASSporT"))
        }
        for byte in token.utf8 where !Self.isSignedDigestByte(byte) {
            return .failure(.init(.identityHeaderMalformed, "PASSporT contains a byte outside base64url and '.'"))
        }

        var header = IdentityHeader(passport: token, info: nil, alg: nil, ppt: nil, parameters: [], warnings: [])
        skipSpace()
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: ";") else {
                return .failure(.init(.identityHeaderMalformed, "unexpected text after the PASSporT"))
            }
            index += 1
            skipSpace()
            let nameStart = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "="), bytes[index] != UInt8(ascii: ";"),
                bytes[index] != 0x20, bytes[index] != 0x09
            {
                index += 1
            }
            let name = String(decoding: bytes[nameStart..<index], as: UTF8.self).lowercased()
            guard !name.isEmpty else {
                return .failure(.init(.identityHeaderMalformed, "empty Identity header parameter"))
            }
            skipSpace()
            var paramValue: String?
            if index < bytes.count, bytes[index] == UInt8(ascii: "=") {
                index += 1
                skipSpace()
                let valueStart = index
                if index < bytes.count, bytes[index] == UInt8(ascii: "<") {
                    while index < bytes.count, bytes[index] != UInt8(ascii: ">") { index += 1 }
                    guard index < bytes.count else {
                        return .failure(.init(.infoMalformed, "parameter \(name) has '<' without '>'"))
                    }
                    index += 1
                } else if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                    index += 1
                    while index < bytes.count, bytes[index] != UInt8(ascii: "\"") { index += 1 }
                    guard index < bytes.count else {
                        return .failure(.init(.identityHeaderMalformed, "parameter \(name) has an unterminated quote"))
                    }
                    index += 1
                } else {
                    while index < bytes.count, bytes[index] != UInt8(ascii: ";"), bytes[index] != 0x20,
                        bytes[index] != 0x09
                    {
                        index += 1
                    }
                }
                paramValue = String(decoding: bytes[valueStart..<index], as: UTF8.self)
                skipSpace()
            }
            header.parameters.append(Parameter(name: name, value: paramValue))
            switch name {
            case "info":
                guard let raw = paramValue, !raw.isEmpty else {
                    return .failure(.init(.infoMalformed, "info parameter has no value"))
                }
                if raw.hasPrefix("<") {
                    let inner = String(raw.dropFirst().dropLast())
                    guard !inner.isEmpty else { return .failure(.init(.infoMalformed, "info=<> is empty")) }
                    header.info = inner
                } else {
                    header.info = raw
                    header.warnings.append("info URI not enclosed in angle brackets")
                }
            case "alg":
                header.alg = paramValue.map(Self.unquote)
            case "ppt":
                header.ppt = paramValue.map(Self.unquote)
            default:
                break
            }
        }
        return .success(header)
    }

    static func unquote(_ text: String) -> String {
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { return String(text.dropFirst().dropLast()) }
        return text
    }

    /// RFC 8224 `base64-char / "."`; padding '=' is tolerated here and rejected by the base64url decoder.
    private static func isSignedDigestByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
            UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }
}
