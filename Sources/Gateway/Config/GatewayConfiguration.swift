import Foundation
import Identity
import Media
import SIP

/// The gateway's configuration: `trunkline.yaml` plus the dialplan file it names.
///
/// Every field is documented here and in the README; defaults are named constants with their reason.
public struct GatewayConfiguration: Sendable {
    public struct SIPSettings: Sendable {
        /// Address to listen on for SIP over UDP and TCP.
        public var listen: String = "127.0.0.1"
        public var port: Int = 5060
        /// SIP over TLS; nil (the default) listens on UDP and TCP only.
        public var tls: TLSSettings?
        /// Per-source INVITE rate and the ban after repeated failures.
        var limits = SourceGuard.Policy()
    }

    public struct MediaSettings: Sendable {
        /// Local address for RTP: bound, and put in our SDP.
        public var address: String = "127.0.0.1"
        /// RTP ports handed out to calls (even ports; RTCP uses the odd one above).
        public var rtpPorts: ClosedRange<Int> = 20000...20999
        /// Hang up a call whose peer has sent no RTP for this long (a caller gone without BYE); 0 never does.
        public var inactivityTimeoutSeconds = GatewayConfiguration.defaultInactivityTimeoutSeconds
        /// Bounds of the receive jitter buffer's delay (ms, 20 ms steps); it adapts within them to measured jitter.
        public var jitterMilliseconds = RTPSession.defaultJitterBuffer
        /// Mean time between our RTCP reports (randomised ±50 % per RFC 3550); 0 sends none (the peer's are
        /// still read).
        public var rtcpIntervalMilliseconds = 5000
    }

    public struct AdminSettings: Sendable {
        /// Admin HTTP API address; nil port disables the API.
        public var listen: String = "127.0.0.1"
        public var port: Int? = 8080
        /// HTTP Basic password for the Twilio-compatible REST endpoints (username: `account_sid`).
        /// Optional on loopback only.
        public var authToken: String?
    }

    public struct Trunk: Sendable {
        public var name: String
        public var profile = TrunkProfile.generic
        /// Source networks allowed to send us INVITEs on this trunk.
        public var allow: [CIDR]
        /// Send RTP to where the peer's RTP comes from (NAT-friendly) rather than to its SDP address.
        public var symmetricRTP = true
        /// How DTMF travels on this trunk's calls (routes may override it).
        public var dtmf = DTMFMode.auto
        /// Verify Identity headers (STIR/SHAKEN) on this trunk's calls, when `identity` is configured.
        public var verifyIdentity = true
        /// Believe this carrier's verstat (X-Twilio-VerStat, `verstat` on P-Asserted-Identity or From).
        public var trustVerstat = false
        /// Use the carrier's verstat even when an Identity header is present.
        public var preferVerstat = false
        /// Where and how calls leave through this trunk; nil for an inbound-only trunk.
        public var outbound: Outbound?
        /// Extra headers (e.g. X-Queue) passed to the agent as `sip_<name>` besides Diversion, History-Info and
        /// User-to-User.
        public var contextHeaders: [String] = []
        /// SRTP (SDES) on this trunk's calls: disabled, allowed (when offered) or required.
        public var srtp = SRTPPolicy.allowed
        /// Codecs to accept, in our order of preference (`opus`, `pcmu`, `pcma`); nil: all, in the offerer's order.
        public var codecs: [String]?
        /// Challenge this trunk's INVITEs (401) and admit only those with valid digest credentials.
        public var inboundAuth: DigestAuthenticator?
        /// Keep a registration at the carrier; INVITEs from the registrar's address belong to this trunk.
        public var registration: Registration?
    }

    /// STIR/SHAKEN verification of inbound calls; nil when not configured (verdicts are then absent, or the
    /// carrier's on trusted trunks).
    public var identity: IdentityConfiguration?
    /// TCPA consent store, ledger and gate defaults for outbound campaigns; nil when not configured.
    public var compliance: ComplianceSettings?

    public var sip = SIPSettings()
    public var media = MediaSettings()
    public var admin = AdminSettings()
    /// Twilio-style account id shown to agents (`AC` + 32 hex); a fixed dev value by default.
    public var accountSid = GatewayConfiguration.defaultAccountSid
    /// Where call records go, one JSON line per call.
    public var callRecords = "run/calls.jsonl"
    /// Folder of 8 kHz mono 16-bit WAV prompts (greeting, digits, goodbye, fallback).
    public var prompts = "prompts"
    /// How long a remote agent may take to accept the WebSocket before the fallback prompt plays.
    public var agentConnectTimeoutMilliseconds = GatewayConfiguration.defaultAgentConnectTimeoutMilliseconds
    /// Attempts to reach a remote agent (each bounded by the timeout) before the fallback prompt plays.
    public var agentConnectAttempts = GatewayConfiguration.defaultAgentConnectAttempts
    /// Wait before the second attempt (doubled before each further one).
    public var agentConnectBackoffMilliseconds = GatewayConfiguration.defaultAgentConnectBackoffMilliseconds
    public var trunks: [Trunk] = []
    public var dialplan = Dialplan(routes: [])
    /// Secure capture (PCI) defaults for every route: the payment sink and whether last-four may be revealed.
    public var secureCapture = SecureCaptureSettings()

    /// Long enough for a caller on hold with silence suppression to keep sending comfort noise or keepalives.
    public static let defaultInactivityTimeoutSeconds = 30
    /// The dev account id: all zeros, so it is obviously not a real Twilio account.
    public static let defaultAccountSid = "AC" + String(repeating: "0", count: 32)
    /// Long enough for a slow TLS/agent start, short enough that a caller is not left in silence.
    public static let defaultAgentConnectTimeoutMilliseconds = 3000
    /// One retry rides out an agent restarting or a dropped SYN without keeping the caller waiting long.
    public static let defaultAgentConnectAttempts = 2
    /// Long enough for a restarting agent's listener to come back, short enough to go unnoticed by the caller.
    public static let defaultAgentConnectBackoffMilliseconds = 500

    public init() {}

    /// Loads `path` and the dialplan it names (relative paths resolve against the config file's folder).
    public static func load(path: String) throws -> GatewayConfiguration {
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        let root = try ConfigNode.load(yaml: try read(path), file: path)
        let keys = try root.mapping(allowed: ["sip", "media", "admin", "identity", "account_sid", "call_records", "prompts", "agent_connect_timeout_ms", "agent_connect_attempts", "agent_connect_backoff_ms", "trunks", "dialplan", "compliance", "secure_capture"])
        var config = GatewayConfiguration()

        if let sip = keys["sip"] {
            let fields = try sip.mapping(allowed: ["listen", "port", "tls", "limits"])
            if let tls = fields["tls"] { config.sip.tls = try parseTLS(tls) { resolve($0, against: base) } }
            if let limits = fields["limits"] { config.sip.limits = try parseLimits(limits) }
            if let listen = fields["listen"] {
                config.sip.listen = try listen.string()
                guard CIDR(config.sip.listen) != nil else { throw listen.error("'\(config.sip.listen)' is not an IP address") }
            }
            if let port = fields["port"] { config.sip.port = try port.int(in: 0...65535) }
        }
        if let media = keys["media"] {
            let fields = try media.mapping(allowed: ["address", "rtp_ports", "inactivity_timeout_s", "jitter_min_ms", "jitter_max_ms", "rtcp_interval_ms"])
            try config.media.parseJitter(fields, in: media)
            if let timeout = fields["inactivity_timeout_s"] { config.media.inactivityTimeoutSeconds = try timeout.int(in: 0...3600) }
            if let interval = fields["rtcp_interval_ms"] { config.media.rtcpIntervalMilliseconds = try interval.int(in: 0...60000) }
            if let address = fields["address"] {
                config.media.address = try address.string()
                guard CIDR(config.media.address) != nil else { throw address.error("'\(config.media.address)' is not an IP address") }
            }
            if let ports = fields["rtp_ports"] { config.media.rtpPorts = try parsePortRange(ports) }
        }
        if let admin = keys["admin"] {
            let fields = try admin.mapping(allowed: ["listen", "port", "auth_token", "enabled"])
            if let enabled = fields["enabled"], try !enabled.bool() { config.admin.port = nil }
            if let listen = fields["listen"] {
                config.admin.listen = try listen.string()
                guard CIDR(config.admin.listen) != nil else { throw listen.error("'\(config.admin.listen)' is not an IP address") }
            }
            if let port = fields["port"], config.admin.port != nil { config.admin.port = try port.int(in: 0...65535) }
            if let token = fields["auth_token"] { config.admin.authToken = try token.string() }
            let loopback = [CIDR("127.0.0.0/8")!, CIDR("::1/128")!].contains { $0.contains(config.admin.listen) }
            if config.admin.authToken == nil, !loopback, config.admin.port != nil {
                throw admin.error("auth_token is required when the admin API listens beyond loopback")
            }
        }
        if let identity = keys["identity"] {
            config.identity = try parseIdentity(identity, base: base)
        }
        if let compliance = keys["compliance"] {
            config.compliance = try ComplianceSettings.parse(compliance) { resolve($0, against: base) }
        }
        if let sid = keys["account_sid"] {
            config.accountSid = try sid.string()
            guard config.accountSid.hasPrefix("AC"), config.accountSid.count == 34,
                  config.accountSid.dropFirst(2).allSatisfy(\.isHexDigit) else {
                throw sid.error("must be 'AC' followed by 32 hex digits")
            }
        }
        if let records = keys["call_records"] { config.callRecords = resolve(try records.string(), against: base) }
        config.prompts = resolve(try keys["prompts"]?.string() ?? config.prompts, against: base)
        if let timeout = keys["agent_connect_timeout_ms"] { config.agentConnectTimeoutMilliseconds = try timeout.int(in: 100...60000) }
        if let attempts = keys["agent_connect_attempts"] { config.agentConnectAttempts = try attempts.int(in: 1...5) }
        if let backoff = keys["agent_connect_backoff_ms"] { config.agentConnectBackoffMilliseconds = try backoff.int(in: 0...10_000) }
        if let capture = keys["secure_capture"] { config.secureCapture = try SecureCaptureSettings.parse(capture, onRoute: false) }

        let trunksNode = try keys["trunks"].required("trunks", in: root)
        for trunkNode in try trunksNode.sequence() {
            config.trunks.append(try parseTrunk(trunkNode, base: base))
        }
        guard !config.trunks.isEmpty else { throw trunksNode.error("at least one trunk is required") }
        for (trunk, node) in zip(config.trunks, try trunksNode.sequence()) where config.sip.tls == nil && trunk.usesTLS {
            throw node.error("trunk '\(trunk.name)' uses transport=tls but sip.tls is not configured")
        }
        var seen = Set<String>()
        for (trunk, node) in zip(config.trunks, try trunksNode.sequence()) where !seen.insert(trunk.name).inserted {
            throw node.error("duplicate trunk name '\(trunk.name)'")
        }

        let dialplanNode = try keys["dialplan"].required("dialplan", in: root)
        let dialplanPath = resolve(try dialplanNode.string(), against: base)
        guard FileManager.default.fileExists(atPath: dialplanPath) else { throw dialplanNode.error("dialplan file '\(dialplanPath)' not found") }
        config.dialplan = try Dialplan.load(path: dialplanPath, trunkNames: Set(config.trunks.map(\.name)))
        return config
    }

    static func read(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, line: 0, column: 0, message: "cannot read: \(error.localizedDescription)")
        }
    }

    private static func resolve(_ path: String, against base: URL) -> String {
        path.hasPrefix("/") ? path : base.appendingPathComponent(path).path
    }

    private static func parsePortRange(_ node: ConfigNode) throws -> ClosedRange<Int> {
        let text = try node.string()
        let bounds = text.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard bounds.count == 2, let low = bounds[0], let high = bounds[1], 1024 <= low, low < high, high <= 65535 else {
            throw node.error("expected 'LOW-HIGH' with 1024 <= LOW < HIGH <= 65535, got '\(text)'")
        }
        return low...high
    }

    private static func parseTrunk(_ node: ConfigNode, base: URL) throws -> Trunk {
        let fields = try node.mapping(allowed: [
            "name", "profile", "allow", "symmetric_rtp", "verify_identity", "trust_verstat", "prefer_verstat", "outbound", "dtmf", "srtp", "codecs", "context_headers",
            "inbound_auth", "register",
        ])
        let name = try fields["name"].required("name", in: node).string()
        let allowNode = try fields["allow"].required("allow", in: node)
        var allow: [CIDR] = []
        for entry in try allowNode.sequence() {
            let text = try entry.string()
            guard let cidr = CIDR(text) else { throw entry.error("'\(text)' is not a CIDR (e.g. 203.0.113.0/24)") }
            allow.append(cidr)
        }
        var trunk = Trunk(name: name, allow: allow)
        if let profile = fields["profile"] {
            let text = try profile.string()
            guard let value = TrunkProfile(rawValue: text) else {
                throw profile.error("'\(text)' is not one of \(TrunkProfile.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            trunk.profile = value
            trunk.trustVerstat = value.trustsVerstatByDefault
        }
        if let headers = fields["context_headers"] {
            trunk.contextHeaders = try headers.stringList()
            for (name, entry) in zip(trunk.contextHeaders, try headers.sequence())
            where name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
                throw entry.error("'\(name)' is not a header name")
            }
        }
        if let outbound = fields["outbound"] { trunk.outbound = try parseOutbound(outbound, profile: trunk.profile, resolve: { resolve($0, against: base) }) }
        if let symmetric = fields["symmetric_rtp"] { trunk.symmetricRTP = try symmetric.bool() }
        if let dtmf = fields["dtmf"] { trunk.dtmf = try DTMFMode.parse(dtmf) }
        if let verify = fields["verify_identity"] { trunk.verifyIdentity = try verify.bool() }
        if let trust = fields["trust_verstat"] { trunk.trustVerstat = try trust.bool() }
        if let prefer = fields["prefer_verstat"] { trunk.preferVerstat = try prefer.bool() }
        try trunk.parseMedia(fields)
        if let auth = fields["inbound_auth"] { trunk.inboundAuth = try parseInboundAuth(auth, trunk: name) }
        if let register = fields["register"] { trunk.registration = try parseRegistration(register) }
        return trunk
    }

    private static func parseIdentity(_ node: ConfigNode, base: URL) throws -> IdentityConfiguration {
        let fields = try node.mapping(allowed: ["trust_anchors", "max_age_s", "allow_private_x5u", "tls_roots"])
        let anchorsNode = try fields["trust_anchors"].required("trust_anchors", in: node)
        let files = try anchorsNode.stringList().map { resolve($0, against: base) }
        guard !files.isEmpty else { throw anchorsNode.error("at least one STI-CA trust anchor (PEM file) is required") }
        var identity: IdentityConfiguration
        do {
            identity = try IdentityConfiguration(trustAnchorPEMFiles: files)
        } catch {
            throw anchorsNode.error("\(error)")
        }
        if let age = fields["max_age_s"] { identity.maximumIATAge = TimeInterval(try age.int(in: 1...3600)) }
        if let allow = fields["allow_private_x5u"] { identity.fetch.allowPrivateTargets = try allow.bool() }
        // Extra roots for the x5u HTTPS connection only (a private CA in front of the certificate host); never
        // STI-CA anchors. Each file must hold at least one certificate.
        if let rootsNode = fields["tls_roots"] {
            let rootFiles = try rootsNode.stringList().map { resolve($0, against: base) }
            do {
                _ = try IdentityConfiguration.loadTrustAnchors(pemFiles: rootFiles)
                identity.fetch.additionalTLSRootsPEM = try rootFiles.map { try String(contentsOfFile: $0, encoding: .utf8) }
            } catch {
                throw rootsNode.error("tls_roots: \(error)")
            }
        }
        return identity
    }

    /// The trunk a source address belongs to: the first whose allow-list contains it, else the first whose
    /// registrar is that address (a registered trunk's calls come from its registrar).
    public func trunk(forSource address: String) -> Trunk? {
        trunks.first { $0.allow.contains { $0.contains(address) } }
            ?? trunks.first { $0.registration.map { CIDR($0.registrar.host)?.contains(address) == true } ?? false }
    }
}
