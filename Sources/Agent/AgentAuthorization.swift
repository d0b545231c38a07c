import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Credentials the gateway presents on a route's WebSocket upgrade, so an agent reachable from the internet can
/// refuse anyone else. Secrets never print: every textual form names only the scheme.
public enum AgentAuthorization: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// `Authorization: Bearer <token>`.
    case bearer(token: String)
    /// `X-Twilio-Signature`, signed as Twilio signs its Media Streams upgrade: HMAC-SHA1 of the stream URL keyed
    /// with the account's auth token, base64 (what Twilio's `RequestValidator` checks).
    case twilioSignature(authToken: String)

    /// The headers to add to the upgrade request for `url`.
    public func headers(for url: AgentURL) -> [(name: String, value: String)] {
        switch self {
        case .bearer(let token):
            [("Authorization", "Bearer \(token)")]
        case .twilioSignature(let authToken):
            [("X-Twilio-Signature", TwilioRequestSignature.sign(url: url.description, authToken: authToken))]
        }
    }

    public var description: String {
        switch self {
        case .bearer: "bearer token (redacted)"
        case .twilioSignature: "Twilio signature (auth token redacted)"
        }
    }

    public var debugDescription: String { description }
}

/// Twilio's request signature: the full URL, then each POST parameter's name and value with no separators, in
/// name order; HMAC-SHA1 keyed with the auth token; base64. A WebSocket upgrade is a GET: no parameters.
public enum TwilioRequestSignature {
    public static func sign(url: String, parameters: [(name: String, value: String)] = [], authToken: String) -> String {
        var signed = url
        for (name, value) in parameters.sorted(by: { $0.name < $1.name }) { signed += name + value }
        let key = SymmetricKey(data: Array(authToken.utf8))
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(signed.utf8), using: key)
        return Data(mac).base64EncodedString()
    }
}
