import Crypto
import Foundation

/// The SHAKEN authentication service (STI-AS): builds and signs a PASSporT and the SIP Identity header value.
///
/// `Sendable`; one instance per (key, x5u) serves every outbound call.
public struct PASSporTSigner: Sendable {
    public let privateKey: P256.Signing.PrivateKey
    /// The https URL where the signing certificate chain is published.
    public let x5u: String

    public init(privateKey: P256.Signing.PrivateKey, x5u: String) {
        self.privateKey = privateKey
        self.x5u = x5u
    }

    /// Loads a P-256 key from a PEM file (`EC PRIVATE KEY` or `PRIVATE KEY`; an `EC PARAMETERS` block is skipped).
    public init(keyPEMFile path: String, x5u: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IdentityConfigurationError.unreadable(path)
        }
        self.init(privateKey: try Self.loadKey(pem: String(decoding: data, as: UTF8.self), path: path), x5u: x5u)
    }

    static func loadKey(pem: String, path: String) throws -> P256.Signing.PrivateKey {
        for label in ["EC PRIVATE KEY", "PRIVATE KEY"] {
            guard let begin = pem.range(of: "-----BEGIN \(label)-----"),
                let end = pem.range(of: "-----END \(label)-----", range: begin.upperBound..<pem.endIndex)
            else { continue }
            if let key = try? P256.Signing.PrivateKey(pemRepresentation: String(pem[begin.lowerBound..<end.upperBound])) {
                return key
            }
        }
        throw IdentityConfigurationError.invalidKey(path)
    }

    /// A signed PASSporT and the Identity header value carrying it.
    public struct Signed: Sendable, Equatable {
        /// `header.payload.signature`, compact JWS.
        public var passport: String
        /// `<passport>;info=<x5u>;alg=ES256;ppt=shaken` — the value of the SIP `Identity` header.
        public var identityHeader: String
    }

    /// Signs a SHAKEN PASSporT.
    /// - Parameters:
    ///   - orig: calling number (any form `TelephoneNumber.canonical` accepts); written as digits only.
    ///   - dest: called number(s), same rules.
    ///   - attest: attestation level.
    ///   - origID: the origination identifier (a UUID string); a random one when nil.
    ///   - iat: issued-at time.
    public func sign(orig: String, dest: [String], attest: Attestation, origID: String? = nil, iat: Date) throws -> Signed {
        guard let origTN = TelephoneNumber.canonical(orig) else { throw SigningError(code: .invalidNumber, value: orig) }
        var destTNs: [String] = []
        for number in dest {
            guard let tn = TelephoneNumber.canonical(number) else { throw SigningError(code: .invalidNumber, value: number) }
            destTNs.append(tn)
        }
        guard !destTNs.isEmpty else { throw SigningError(code: .invalidNumber, value: "") }
        let origID = origID ?? UUID().uuidString.lowercased()
        // Keys in lexicographic order, no whitespace (RFC 8225 §9).
        let header = "{\"alg\":\"ES256\",\"ppt\":\"shaken\",\"typ\":\"passport\",\"x5u\":\(Self.jsonString(x5u))}"
        let destJSON = destTNs.map(Self.jsonString).joined(separator: ",")
        let payload =
            "{\"attest\":\"\(attest.rawValue)\",\"dest\":{\"tn\":[\(destJSON)]},\"iat\":\(Int64(iat.timeIntervalSince1970)),"
            + "\"orig\":{\"tn\":\(Self.jsonString(origTN))},\"origid\":\(Self.jsonString(origID))}"
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        let signature = try privateKey.signature(for: Data(signingInput.utf8))
        let passport = signingInput + "." + Base64URL.encode(signature.rawRepresentation)
        return Signed(passport: passport, identityHeader: "\(passport);info=<\(x5u)>;alg=ES256;ppt=shaken")
    }

    static func jsonString(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Signing input problems (thrown: the caller passed bad data). Equality compares the code only.
public struct SigningError: Error, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable { case invalidNumber }
    public let code: Code
    public let value: String

    public var description: String { "\(code.rawValue): \(value)" }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
