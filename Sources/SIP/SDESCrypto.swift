/// One `a=crypto` line (RFC 4568 SDES): `a=crypto:<tag> <suite> <key-params> [<session-params>…]`.
///
/// Kept structural: the key material (`inline:<base64>[|lifetime][|MKI:length]`) stays an opaque string here and
/// is read by the media layer, which owns SRTP. The key is secret, so `description` never shows it — anything
/// that prints an offer or an answer (logs, errors, test failures) prints `inline:<redacted>` instead.
public struct SDESCrypto: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Identifies the line within its media section; the answer echoes the tag it accepts.
    public var tag: Int
    /// The crypto-suite name, e.g. `AES_CM_128_HMAC_SHA1_80`.
    public var suite: String
    /// The key parameters, e.g. `inline:<base64>|2^20|1:32` (only `inline` is defined by RFC 4568).
    public var keyParameters: String
    /// Session parameters such as `UNENCRYPTED_SRTP` or `KDR=…`, in order.
    public var sessionParameters: [String]

    public init(tag: Int, suite: String, keyParameters: String, sessionParameters: [String] = []) {
        self.tag = tag
        self.suite = suite
        self.keyParameters = keyParameters
        self.sessionParameters = sessionParameters
    }

    /// The attribute value after `a=crypto:`, key included: for the SDP text only.
    var attributeValue: String {
        ([String(tag), suite, keyParameters] + sessionParameters).joined(separator: " ")
    }

    public var description: String {
        ([String(tag), suite, "inline:<redacted>"] + sessionParameters).joined(separator: " ")
    }

    public var debugDescription: String { "SDESCrypto(\(description))" }

    /// Parses the value of an `a=crypto:` attribute; nil when it is not `<tag> <suite> <key-params> …`.
    init?(attribute: Substring) {
        let fields = attribute.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 3, let tag = Int(fields[0]), (0...999_999_999).contains(tag) else { return nil }
        self.init(
            tag: tag, suite: String(fields[1]), keyParameters: String(fields[2]),
            sessionParameters: fields.dropFirst(3).map(String.init))
    }
}

/// Whether a trunk's calls use SRTP (RFC 3711 keyed by SDES, RFC 4568).
public enum SRTPPolicy: String, Sendable, CaseIterable {
    /// Plain RTP only: an offer that insists on SRTP (`RTP/SAVP`) is refused with 488.
    case disabled
    /// SRTP when the offer carries usable `a=crypto`, plain RTP otherwise.
    case allowed
    /// SRTP only: an offer without a usable `a=crypto` is refused with 488.
    case required
}
