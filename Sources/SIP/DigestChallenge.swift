import Crypto
import Foundation

/// Digest authentication of requests a trunk sends us (RFC 3261 §22.4, RFC 2617 `qop=auth`, RFC 7616/8760
/// SHA-256): the challenge we answer a request with, and the check of the `Authorization` header it comes back with.
///
/// Stateless: a nonce carries its own issue time and an HMAC over it, so any nonce we issued can be checked
/// without a table, and one older than `nonceLifetime` is reported stale (the client retries without asking its
/// user, RFC 2617 §3.2.1). Time is passed in, so expiry is tested without waiting.
public struct DigestAuthenticator: Sendable, CustomStringConvertible {
    public enum Algorithm: String, Sendable, CaseIterable {
        case md5 = "MD5"
        case sha256 = "SHA-256"

        func hash(_ text: String) -> String {
            switch self {
            case .md5: Insecure.MD5.hash(data: Data(text.utf8)).hexString
            case .sha256: SHA256.hash(data: Data(text.utf8)).hexString
            }
        }
    }

    public var realm: String
    public var credentials: DigestCredentials
    /// Offered in this order; a client takes the first it supports.
    public var algorithms: [Algorithm]
    public var nonceLifetime: Duration
    private let secret: SymmetricKey

    /// Long enough for a carrier to answer the challenge across an ocean, short enough that a captured nonce is
    /// soon useless.
    public static let defaultNonceLifetime: Duration = .seconds(30)

    public init(
        realm: String, credentials: DigestCredentials, algorithms: [Algorithm] = [.sha256, .md5],
        nonceLifetime: Duration = DigestAuthenticator.defaultNonceLifetime, secret: SymmetricKey = SymmetricKey(size: .bits256)
    ) {
        precondition(!algorithms.isEmpty, "a digest challenge needs an algorithm")
        self.realm = realm
        self.credentials = credentials
        self.algorithms = algorithms
        self.nonceLifetime = nonceLifetime
        self.secret = secret
    }

    /// Never shows the password or the nonce key.
    public var description: String {
        "DigestAuthenticator(realm: \(realm), user: \(credentials.username), algorithms: \(algorithms.map(\.rawValue)))"
    }

    /// What checking a request's credentials found.
    public enum Verdict: Sendable, Equatable {
        case authorized
        /// No credentials for our realm: challenge, not a failure (the first INVITE of every call).
        case missing
        /// Right password, expired nonce: challenge again with `stale=true`, not a failure.
        case stale
        /// Wrong user, password, nonce or URI, or a malformed header: a failed attempt.
        case failed(String)
    }

    /// `WWW-Authenticate` header values (one per algorithm), for a 401; `now` is seconds since the Unix epoch.
    public func challenges(now: Double, stale: Bool = false) -> [String] {
        let nonce = makeNonce(now: now)
        return algorithms.map { algorithm in
            "Digest realm=\"\(realm)\", nonce=\"\(nonce)\", algorithm=\(algorithm.rawValue), qop=\"auth\""
                + (stale ? ", stale=true" : "")
        }
    }

    /// Checks the `Authorization` header values of a request (`method`, Request-URI `requestURI`).
    public func verify(authorization headers: [String], method: String, requestURI: String, now: Double) -> Verdict {
        let ours = headers.compactMap(DigestResponse.init).filter { $0.realm == realm }
        guard let response = ours.first else {
            return headers.isEmpty ? .missing : .failed("no digest credentials for realm \(realm)")
        }
        guard response.username == credentials.username else { return .failed("unknown user \(response.username)") }
        guard let algorithm = Algorithm.allCases.first(where: { $0.rawValue.caseInsensitiveCompare(response.algorithm ?? "MD5") == .orderedSame }),
              algorithms.contains(algorithm) else {
            return .failed("algorithm \(response.algorithm ?? "-") was not offered")
        }
        // The digest covers the URI the client names; it must be the request's own, or a response for another
        // request could be replayed here (RFC 2617 §3.2.2.5).
        guard Self.sameURI(response.uri, requestURI) else { return .failed("digest uri does not match the Request-URI") }
        let ha1 = algorithm.hash("\(response.username):\(realm):\(credentials.password)")
        let ha2 = algorithm.hash("\(method):\(response.uri)")
        let expected: String
        switch response.qop {
        case nil:
            expected = algorithm.hash("\(ha1):\(response.nonce):\(ha2)")
        case "auth":
            guard let nc = response.nc, let cnonce = response.cnonce else { return .failed("qop=auth without nc or cnonce") }
            expected = algorithm.hash("\(ha1):\(response.nonce):\(nc):\(cnonce):auth:\(ha2)")
        case let other?:
            return .failed("qop \(other) was not offered")
        }
        guard Self.constantTimeEqual(expected, response.response.lowercased()) else { return .failed("wrong digest response") }
        switch nonceAge(response.nonce, now: now) {
        case nil: return .failed("nonce was not issued by us")
        case let age? where age > Double(nonceLifetime.components.seconds) || age < -1: return .stale
        default: return .authorized
        }
    }

    // MARK: - Nonces

    /// base64url(issue time, 8 bytes big-endian ‖ first 16 bytes of HMAC-SHA256(secret, issue time ‖ realm)).
    func makeNonce(now: Double) -> String {
        var time = UInt64(max(0, now)).bigEndian
        let stamp = withUnsafeBytes(of: &time) { Data($0) }
        return Self.base64URL(stamp + mac(stamp))
    }

    /// Seconds since `nonce` was issued, or nil when we did not issue it.
    private func nonceAge(_ nonce: String, now: Double) -> Double? {
        guard let data = Self.data(base64URL: nonce), data.count == 24 else { return nil }
        let stamp = data.prefix(8)
        guard Self.constantTimeEqual(Data(mac(stamp)), Data(data.suffix(16))) else { return nil }
        let issued = stamp.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return now - Double(issued)
    }

    private func mac(_ stamp: Data) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: stamp + Data(realm.utf8), using: secret).prefix(16))
    }

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private static func data(base64URL text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        constantTimeEqual(Data(a.utf8), Data(b.utf8))
    }

    private static func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// The digest `uri` names the request's target: the Request-URI itself, or (as sipp and some gateways write
    /// it) the same host and port without the user part. Compared by host and port, case-insensitively.
    private static func sameURI(_ digestURI: String, _ requestURI: String) -> Bool {
        guard let a = target(digestURI), let b = target(requestURI) else { return digestURI == requestURI }
        return a == b
    }

    /// `host[:port]` of a `sip:`/`sips:` URI, lower-cased.
    private static func target(_ uri: String) -> String? {
        var rest = Substring(uri.trimmingCharacters(in: .whitespaces).lowercased())
        guard let colon = rest.firstIndex(of: ":"), ["sip", "sips"].contains(rest[..<colon]) else { return nil }
        rest = rest[rest.index(after: colon)...]
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        let end = rest.firstIndex { $0 == ";" || $0 == "?" } ?? rest.endIndex
        let target = rest[..<end]
        return target.isEmpty ? nil : String(target)
    }
}

/// The parameters of one `Authorization: Digest …` header value.
struct DigestResponse: Equatable {
    var username: String
    var realm: String
    var nonce: String
    var uri: String
    var response: String
    var algorithm: String?
    var qop: String?
    var nc: String?
    var cnonce: String?

    init?(_ header: String) {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.count > 7, text.prefix(7).lowercased() == "digest " else { return nil }
        let parameters = Self.parameters(text.dropFirst(7))
        guard let username = parameters["username"], let realm = parameters["realm"], let nonce = parameters["nonce"],
              let uri = parameters["uri"], let response = parameters["response"] else { return nil }
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self.uri = uri
        self.response = response
        algorithm = parameters["algorithm"]
        qop = parameters["qop"]?.lowercased()
        nc = parameters["nc"]
        cnonce = parameters["cnonce"]
    }

    /// `name=value` pairs separated by commas, values quoted (with `\` escapes) or bare tokens; names lower-cased.
    static func parameters(_ text: Substring) -> [String: String] {
        var result: [String: String] = [:]
        var rest = text[...]
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "," || $0 == "\t" }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let name = rest[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: equals)...].drop { $0 == " " }
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped { value.append(character); escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { break } else { value.append(character) }
                }
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            if result[name] == nil { result[name] = value }
        }
        return result
    }
}

extension Digest {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}
