import Foundation

/// An SRTP crypto suite as named by SDES (RFC 4568 §6.2, RFC 7714 §14.2 for AEAD).
public enum SRTPSuite: String, Sendable, Hashable, CaseIterable {
    case aesCM128HmacSHA1_80 = "AES_CM_128_HMAC_SHA1_80"
    case aesCM128HmacSHA1_32 = "AES_CM_128_HMAC_SHA1_32"
    case aes256CMHmacSHA1_80 = "AES_256_CM_HMAC_SHA1_80"
    case aeadAES128GCM = "AEAD_AES_128_GCM"

    /// Master key plus master salt, in bytes: what `inline:` carries.
    public var keyMaterialLength: Int {
        switch self {
        case .aesCM128HmacSHA1_80, .aesCM128HmacSHA1_32: 16 + 14
        case .aes256CMHmacSHA1_80: 32 + 14
        case .aeadAES128GCM: 16 + 12
        }
    }

    /// The suites this process's libsrtp can run, in our order of preference (strongest first). AES-GCM needs
    /// libsrtp built with a crypto backend (Debian's uses NSS), so it is probed rather than assumed.
    public static let available: [SRTPSuite] = [.aeadAES128GCM, .aes256CMHmacSHA1_80, .aesCM128HmacSHA1_80, .aesCM128HmacSHA1_32]
        .filter { SRTPStream.canCreate($0) }
}

/// SRTP master key and salt for one direction of one call, as exchanged by SDES.
///
/// Secret: `description` names the suite only, so string interpolation into a log or error cannot leak it.
/// Made from the system CSPRNG (`SystemRandomNumberGenerator`: getrandom(2) on Linux) or read from an offer.
public struct SRTPKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let suite: SRTPSuite
    /// Key then salt, `suite.keyMaterialLength` bytes.
    let material: [UInt8]

    /// A fresh random key for `suite`.
    public static func generate(_ suite: SRTPSuite) -> SRTPKey {
        var generator = SystemRandomNumberGenerator()
        return SRTPKey(suite: suite, material: (0..<suite.keyMaterialLength).map { _ in generator.next() })
    }

    init(suite: SRTPSuite, material: [UInt8]) {
        precondition(material.count == suite.keyMaterialLength)
        self.suite = suite
        self.material = material
    }

    /// Reads SDES key parameters: `inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>]` (RFC 4568 §6.1).
    /// A lifetime is accepted (calls are far shorter than 2^31 packets); an MKI is refused because we do not
    /// rekey. Errors never quote the key.
    public init(suite: SRTPSuite, sdesKeyParameters text: String) throws(MediaError) {
        guard text.hasPrefix("inline:") else { throw MediaError(.invalidKey, "SRTP key parameters are not 'inline:'") }
        let fields = text.dropFirst("inline:".count).split(separator: "|", omittingEmptySubsequences: false)
        if fields.count > 2 || fields.dropFirst().contains(where: { $0.contains(":") }) {
            throw MediaError(.invalidKey, "SRTP key with an MKI is not supported")
        }
        if fields.count == 2, !Self.isLifetime(fields[1]) {
            throw MediaError(.invalidKey, "SRTP key lifetime is not a number or 2^n")
        }
        guard let material = Data(base64Encoded: String(fields[0])), material.count == suite.keyMaterialLength else {
            throw MediaError(.invalidKey, "SRTP key is not \(suite.keyMaterialLength) bytes of base64 for \(suite.rawValue)")
        }
        self.init(suite: suite, material: Array(material))
    }

    private static func isLifetime(_ field: Substring) -> Bool {
        if field.hasPrefix("2^") { return Int(field.dropFirst(2)).map { (1...48).contains($0) } ?? false }
        return UInt64(field) != nil
    }

    /// `inline:<base64>` for our SDP.
    public var sdesKeyParameters: String { "inline:" + Data(material).base64EncodedString() }

    public var description: String { "SRTPKey(\(suite.rawValue), <redacted>)" }
    public var debugDescription: String { description }
}

/// SRTP for one call: the suite and the key of each direction.
public struct SRTPConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// The peer's key: what its packets are unprotected with.
    public var remote: SRTPKey
    /// Our key: what our packets are protected with.
    public var local: SRTPKey

    public init(remote: SRTPKey, local: SRTPKey) {
        precondition(remote.suite == local.suite, "both directions use the negotiated suite")
        self.remote = remote
        self.local = local
    }

    public var suite: SRTPSuite { local.suite }
    public var description: String { "SRTP \(suite.rawValue)" }
}
