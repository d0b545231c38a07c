import Foundation
import Identity
import SIP

/// Which carrier a trunk talks to: sets the defaults that differ between carriers (nothing is hard-coded beyond
/// defaults; every one can be overridden on the trunk).
public enum TrunkProfile: String, Sendable, CaseIterable {
    /// Twilio Elastic SIP Trunking: verstat arrives as X-Twilio-VerStat; caller ID in From.
    case twilio
    /// Telnyx: verstat arrives as a `verstat` parameter on P-Asserted-Identity or From; caller ID in From and PAI.
    case telnyx
    /// Any other SIP peer: no carrier verdict is believed unless configured.
    case generic

    var trustsVerstatByDefault: Bool { self != .generic }
    var defaultCallerIDHeader: CallerIDHeader { self == .telnyx ? .pAssertedIdentity : .from }
}

/// Where the caller number we present goes (besides From, which always carries it unless privacy hides it).
public enum CallerIDHeader: String, Sendable, CaseIterable {
    case from
    case pAssertedIdentity = "pai"
    case pPreferredIdentity = "ppi"
}

/// One termination address of a trunk: where our INVITEs go.
public struct TerminationAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: String, Sendable, CaseIterable { case udp, tcp, tls }
    public var host: String
    public var port: Int?
    public var transport: Transport

    /// Parses `host`, `host:port`, `[v6]:port`, optionally prefixed by `sip:` (or `sips:`, meaning TLS) and
    /// followed by `;transport=tcp`.
    public init?(_ text: String) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var transport = Transport.udp
        if rest.lowercased().hasPrefix("sip:") {
            rest = rest.dropFirst(4)
        } else if rest.lowercased().hasPrefix("sips:") {
            rest = rest.dropFirst(5)
            transport = .tls
        }
        if let semicolon = rest.firstIndex(of: ";") {
            let parameter = rest[rest.index(after: semicolon)...].lowercased()
            guard parameter.hasPrefix("transport="), let value = Transport(rawValue: String(parameter.dropFirst(10))) else { return nil }
            transport = value
            rest = rest[..<semicolon]
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[...close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        let hostAllowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: ".-[]:"))
        guard !host.isEmpty, host.unicodeScalars.allSatisfy(hostAllowed.contains) else { return nil }
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port) else { return nil }
            self.port = port
        }
        self.host = String(host)
        self.transport = transport
    }

    /// The Request-URI for calling `user` at this address.
    public func requestURI(user: String) -> String {
        "\(scheme):\(user)@\(description)"
    }

    /// Where OPTIONS health checks go: the address itself, no user part.
    public var optionsURI: String { "\(scheme):\(description)" }

    /// `host[:port][;transport=…]`, as written in the config.
    public var description: String {
        (port.map { "\(host):\($0)" } ?? host) + (transport == .udp ? "" : ";transport=\(transport.rawValue)")
    }

    private var scheme: String { transport == .tls ? "sips" : "sip" }
}

extension GatewayConfiguration {
    /// How calls leave through a trunk.
    public struct Outbound: Sendable {
        /// Tried in order; an address that fails its OPTIONS health check, or does not answer an INVITE, is
        /// skipped for the next one.
        public var addresses: [TerminationAddress]
        /// Answers the carrier's 401/407 challenge.
        public var credentials: DigestCredentials?
        /// Host part of our From URI; the SIP listen address when not set.
        public var fromDomain: String?
        public var callerIDHeader: CallerIDHeader
        /// Adds `Privacy: id` and presents `anonymous` in From (the number stays in the identity header).
        public var privacy = false
        /// Give up (CANCEL, "no-answer") when nobody answers within this time.
        public var ringTimeoutSeconds = Outbound.defaultRingTimeoutSeconds
        /// How often each address is probed with OPTIONS; 0 turns health checks off.
        public var healthCheckIntervalSeconds = Outbound.defaultHealthCheckIntervalSeconds
        /// An address that has not answered OPTIONS within this time is down (sofia would wait Timer F, 32 s).
        public var healthCheckTimeout: Duration = Outbound.defaultHealthCheckTimeout
        /// An INVITE that draws no response at all within this time goes to the next address; nil waits for
        /// sofia's Timer B (32 s).
        public var inviteTimeout: Duration?
        /// STIR/SHAKEN authentication service: every INVITE carries an Identity header signed with this key.
        public var signing: Signing?

        public struct Signing: Sendable {
            public var signer: PASSporTSigner
            public var attestation: Attestation
        }

        /// What carriers use before they give up on a ringing call themselves (Twilio's default timeout is 60 s).
        public static let defaultRingTimeoutSeconds = 30
        public static let defaultHealthCheckIntervalSeconds = 30
        /// A carrier answers OPTIONS in well under a second; a few retransmissions' worth of waiting is enough.
        public static let defaultHealthCheckTimeout: Duration = .seconds(4)
    }

    static func parseOutbound(_ node: ConfigNode, profile: TrunkProfile, resolve: (String) -> String) throws -> Outbound {
        let fields = try node.mapping(allowed: [
            "addresses", "username", "password", "from_domain", "caller_id_header", "privacy", "ring_timeout_s",
            "health_check_interval_s", "health_check_timeout_ms", "invite_timeout_ms", "sign",
        ])
        let addressesNode = try fields["addresses"].required("addresses", in: node)
        var addresses: [TerminationAddress] = []
        for entry in try addressesNode.sequence() {
            let text = try entry.string()
            guard let address = TerminationAddress(text) else {
                throw entry.error("'\(text)' is not a termination address (host[:port][;transport=udp|tcp|tls])")
            }
            addresses.append(address)
        }
        guard !addresses.isEmpty else { throw addressesNode.error("at least one termination address is required") }
        var outbound = Outbound(addresses: addresses, callerIDHeader: profile.defaultCallerIDHeader)
        switch (fields["username"], fields["password"]) {
        case (let user?, let password?):
            outbound.credentials = DigestCredentials(username: try user.string(), password: try password.string())
        case (nil, nil):
            break
        case (let user?, nil):
            throw user.error("username needs a password")
        case (nil, let password?):
            throw password.error("password needs a username")
        }
        if let domain = fields["from_domain"] { outbound.fromDomain = try domain.string() }
        if let header = fields["caller_id_header"] {
            let text = try header.string()
            guard let value = CallerIDHeader(rawValue: text) else {
                throw header.error("'\(text)' is not one of \(CallerIDHeader.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            outbound.callerIDHeader = value
        }
        if let privacy = fields["privacy"] { outbound.privacy = try privacy.bool() }
        if let ring = fields["ring_timeout_s"] { outbound.ringTimeoutSeconds = try ring.int(in: 1...600) }
        if let interval = fields["health_check_interval_s"] { outbound.healthCheckIntervalSeconds = try interval.int(in: 0...3600) }
        if let timeout = fields["health_check_timeout_ms"] { outbound.healthCheckTimeout = .milliseconds(try timeout.int(in: 100...32_000)) }
        if let timeout = fields["invite_timeout_ms"] { outbound.inviteTimeout = .milliseconds(try timeout.int(in: 100...32_000)) }
        if let sign = fields["sign"] { outbound.signing = try parseSigning(sign, resolve: resolve) }
        return outbound
    }

    /// `sign: { key: PEM file, x5u: https URL of the certificate chain, attest: A|B|C }`.
    private static func parseSigning(_ node: ConfigNode, resolve: (String) -> String) throws -> Outbound.Signing {
        let fields = try node.mapping(allowed: ["key", "x5u", "attest"])
        let key = resolve(try fields["key"].required("key", in: node).string())
        let x5uNode = try fields["x5u"].required("x5u", in: node)
        let x5u = try x5uNode.string()
        guard let url = URL(string: x5u), url.scheme == "https", url.host != nil else {
            throw x5uNode.error("x5u must be an https URL (verifiers fetch the certificate there)")
        }
        var attestation = Attestation.a
        if let attest = fields["attest"] {
            let text = try attest.string()
            guard let value = Attestation(rawValue: text) else { throw attest.error("attest must be A, B or C") }
            attestation = value
        }
        do {
            return Outbound.Signing(signer: try PASSporTSigner(keyPEMFile: key, x5u: x5u), attestation: attestation)
        } catch {
            throw node.error("cannot load the signing key: \(error)")
        }
    }
}
