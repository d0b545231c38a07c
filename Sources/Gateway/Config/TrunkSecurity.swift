import Foundation
import SIP

extension GatewayConfiguration {
    /// SIP over TLS: where it listens and the certificate it presents.
    public struct TLSSettings: Sendable {
        /// 5061 (RFC 3261 §26.2) unless set; 0 picks a free port (tests).
        public var port = 5061
        /// A folder with sofia's TLS files: `agent.pem` (our private key and certificate chain) and `cafile.pem`
        /// (the CAs we trust for peers); `scripts/make-dev-cert.sh` writes a self-signed pair.
        public var certificateDirectory: String
        /// `verify_server` (default true): a trunk or registrar we connect to over TLS must present a certificate
        /// that chains to `cafile.pem` and names the host we dialled; otherwise the request is never sent and the
        /// attempt ends at the trunk's invite timeout (sofia reports no error), then failover goes on.
        public var verifyServers = true
    }

    /// A registration we keep at a carrier's registrar (credential trunks behind NAT): calls come back to the
    /// address it learns from us.
    public struct Registration: Sendable {
        /// Where REGISTER goes, e.g. `sip.example.com` or `registrar.example.com:5080;transport=tcp`.
        public var registrar: TerminationAddress
        public var credentials: DigestCredentials
        /// Requested lifetime; sofia refreshes before it runs out.
        public var expiresSeconds = Registration.defaultExpiresSeconds

        /// What carriers commonly grant; short enough for a NAT binding to stay open with the refreshes.
        public static let defaultExpiresSeconds = 300
    }

    static func parseTLS(_ node: ConfigNode, resolve: (String) -> String) throws -> TLSSettings {
        let fields = try node.mapping(allowed: ["port", "certificate_dir", "verify_server"])
        let directoryNode = try fields["certificate_dir"].required("certificate_dir", in: node)
        let directory = resolve(try directoryNode.string())
        guard FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("agent.pem")) else {
            throw directoryNode.error("\(directory)/agent.pem not found (key and certificate; scripts/make-dev-cert.sh makes a dev pair)")
        }
        var tls = TLSSettings(certificateDirectory: directory)
        if let port = fields["port"] { tls.port = try port.int(in: 0...65535) }
        if let verify = fields["verify_server"] { tls.verifyServers = try verify.bool() }
        return tls
    }

    /// `limits: { invites_per_second, auth_failures, failure_window_s, ban_s, on_ban: reject|drop }`.
    static func parseLimits(_ node: ConfigNode) throws -> SourceGuard.Policy {
        let fields = try node.mapping(allowed: ["invites_per_second", "auth_failures", "failure_window_s", "ban_s", "on_ban"])
        var policy = SourceGuard.Policy()
        if let rate = fields["invites_per_second"] { policy.invitesPerSecond = try rate.int(in: 0...100_000) }
        if let failures = fields["auth_failures"] { policy.maximumFailures = try failures.int(in: 0...1000) }
        if let window = fields["failure_window_s"] { policy.failureWindow = .seconds(try window.int(in: 1...86_400)) }
        if let ban = fields["ban_s"] { policy.banDuration = .seconds(try ban.int(in: 1...604_800)) }
        if let response = fields["on_ban"] {
            let text = try response.string()
            guard let value = SourceGuard.BanResponse(rawValue: text) else { throw response.error("on_ban must be reject or drop") }
            policy.banResponse = value
        }
        return policy
    }

    /// `inbound_auth: { username, password | password_env, realm, algorithms: [SHA-256, MD5] }`.
    static func parseInboundAuth(_ node: ConfigNode, trunk: String) throws -> DigestAuthenticator {
        let fields = try node.mapping(allowed: ["username", "password", "password_env", "realm", "algorithms"])
        let username = try fields["username"].required("username", in: node).string()
        let password = try ConfigNode.secret(fields["password"], env: fields["password_env"], in: node, what: "password or password_env")
        let realm = try fields["realm"]?.string() ?? trunk
        guard !realm.contains("\""), !username.contains("\"") else { throw node.error("realm and username may not contain quotes") }
        var algorithms: [DigestAuthenticator.Algorithm] = [.sha256, .md5]
        if let list = fields["algorithms"] {
            algorithms = try list.sequence().map { entry in
                let text = try entry.string()
                guard let value = DigestAuthenticator.Algorithm(rawValue: text.uppercased()) else {
                    throw entry.error("'\(text)' is not one of SHA-256, MD5")
                }
                return value
            }
            guard !algorithms.isEmpty else { throw list.error("at least one algorithm is required") }
        }
        return DigestAuthenticator(realm: realm, credentials: DigestCredentials(username: username, password: password), algorithms: algorithms)
    }

    /// `register: { registrar, username, password | password_env, expires_s }`.
    static func parseRegistration(_ node: ConfigNode) throws -> Registration {
        let fields = try node.mapping(allowed: ["registrar", "username", "password", "password_env", "expires_s"])
        let registrarNode = try fields["registrar"].required("registrar", in: node)
        let text = try registrarNode.string()
        guard let registrar = TerminationAddress(text) else {
            throw registrarNode.error("'\(text)' is not a registrar address (host[:port][;transport=udp|tcp|tls])")
        }
        let username = try fields["username"].required("username", in: node).string()
        let password = try ConfigNode.secret(fields["password"], env: fields["password_env"], in: node, what: "password or password_env")
        var registration = Registration(registrar: registrar, credentials: DigestCredentials(username: username, password: password))
        if let expires = fields["expires_s"] { registration.expiresSeconds = try expires.int(in: 2...86_400) }
        return registration
    }
}

extension GatewayConfiguration.Trunk {
    /// Whether any of this trunk's addresses needs the TLS transport.
    var usesTLS: Bool {
        (outbound?.addresses.contains { $0.transport == .tls } ?? false) || registration?.registrar.transport == .tls
    }
}
