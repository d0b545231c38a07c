import Agent
import CallFlow
import Foundation
import Identity

/// Routes for inbound calls, matched in file order on the called number.
public struct Dialplan: Sendable {
    public var routes: [Route]

    public struct Route: Sendable {
        public var name: String
        public var match: Match
        /// Only calls from these trunks (all trunks when nil).
        public var trunks: Set<String>?
        public var action: Action
        /// Ring (180) this long before answering; 0 answers at once.
        public var ringMilliseconds: Int = 0
        /// Only calls whose caller-identity verdict is one of these (all calls when nil).
        public var identity: Set<IdentityCondition>?
        /// Secure capture (PCI) settings over the global ones.
        public var secureCapture: SecureCaptureSettings?
        /// How DTMF travels on this route's calls, over the trunk's.
        public var dtmf: DTMFMode?
        /// How audio goes to and from a remote agent (`agent_audio`): μ-law 8 kHz, or 16-bit PCM wideband.
        public var agentAudio = AgentMediaFormat.muLaw
        /// Credentials and limits for the agent (keys of `agent:` besides `url`).
        public var agentSettings = AgentRouteSettings()
        /// `fallback.transfer_to`: when the agent cannot be reached or fails, the prompt plays and the call is
        /// transferred here (REFER, else a bridge) instead of hung up. A SIP URI or a number (through the trunk).
        public var fallbackTransferTo: String?
    }

    /// A STIR/SHAKEN condition a route can require: a verdict status or an attestation level.
    public enum IdentityCondition: String, Sendable, Hashable, CaseIterable {
        case valid, invalid, absent, a = "A", b = "B", c = "C"

        func holds(for verdict: IdentityVerdict) -> Bool {
            switch self {
            case .valid: verdict.status == .valid
            case .invalid: verdict.status == .invalid
            case .absent: verdict.status == .absent
            case .a, .b, .c: verdict.status == .valid && verdict.attestation?.rawValue == rawValue
            }
        }
    }

    public enum Match: Sendable {
        case exact(String)
        case prefix(String)
        case regex(String, NSRegularExpressionBox)
        case any

        func matches(_ number: String) -> Bool {
            switch self {
            case .exact(let value): number == value
            case .prefix(let value): number.hasPrefix(value)
            case .regex(_, let box): box.matchesWhole(number)
            case .any: true
            }
        }
    }

    public enum Action: Sendable, Equatable {
        /// A remote agent speaking Twilio Media Streams over WebSocket.
        case remoteAgent(url: AgentURL)
        /// The built-in scripted demo agent.
        case embeddedDemo
        /// The embedded agent running a call flow (`flow:`, a file or inline).
        case flow(CallFlow)
        /// Refuse the call with this SIP status, or (nil) with the status the identity verdict's reason maps to
        /// (428, 436, 437, 438, 403 — RFC 8224 §6.2.2).
        case reject(status: Int?)
    }

    /// The first route for this trunk whose match accepts `number` and whose identity condition, if any, holds.
    public func route(number: String, trunk: String, identity: IdentityVerdict = IdentityVerdict(status: .absent)) -> Route? {
        routes.first { route in
            (route.trunks?.contains(trunk) ?? true) && route.match.matches(number)
                && (route.identity.map { $0.contains { $0.holds(for: identity) } } ?? true)
        }
    }

    static func load(path: String, trunkNames: Set<String>) throws -> Dialplan {
        let root = try ConfigNode.load(yaml: try GatewayConfiguration.read(path), file: path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        let keys = try root.mapping(allowed: ["routes"])
        var routes: [Route] = []
        for node in try keys["routes"].required("routes", in: root).sequence() {
            let fields = try node.mapping(allowed: ["name", "match", "trunks", "identity", "agent", "embedded", "flow", "reject", "ring_ms", "secure_capture", "dtmf", "agent_audio", "fallback"])
            let name = try fields["name"].required("name", in: node).string()
            let match = try parseMatch(fields["match"], in: node)
            var trunks: Set<String>?
            if let trunksNode = fields["trunks"] {
                let names = try trunksNode.stringList()
                if let unknown = names.first(where: { !trunkNames.contains($0) }) {
                    throw trunksNode.error("unknown trunk '\(unknown)'")
                }
                trunks = Set(names)
            }
            let actions = ["agent", "embedded", "flow", "reject"].filter { fields[$0] != nil }
            guard actions.count == 1 else {
                throw node.error("route '\(name)' needs exactly one action: agent, embedded, flow or reject (has \(actions.isEmpty ? "none" : actions.joined(separator: ", ")))")
            }
            let ring = try fields["ring_ms"]?.int(in: 0...300_000) ?? 0
            var identity: Set<IdentityCondition>?
            if let identityNode = fields["identity"] {
                identity = Set(try identityNode.sequence().map { entry in
                    let text = try entry.string()
                    guard let condition = IdentityCondition(rawValue: text) else {
                        throw entry.error("unknown identity condition '\(text)' (known: valid, invalid, absent, A, B, C)")
                    }
                    return condition
                })
            }
            var route = Route(
                name: name, match: match, trunks: trunks, action: try parseAction(actions[0], fields[actions[0]]!, base: base),
                ringMilliseconds: ring, identity: identity,
                secureCapture: try fields["secure_capture"].map { try SecureCaptureSettings.parse($0, onRoute: true) },
                dtmf: try fields["dtmf"].map(DTMFMode.parse))
            if let audio = fields["agent_audio"] { route.agentAudio = try parseAgentAudio(audio, action: route.action) }
            if let agent = fields["agent"] { route.agentSettings = try AgentRouteSettings.parse(agent.mapping(allowed: agentKeys)) }
            if let fallback = fields["fallback"] { route.fallbackTransferTo = try parseFallback(fallback) }
            routes.append(route)
        }
        return Dialplan(routes: routes)
    }

    private static func parseFallback(_ node: ConfigNode) throws -> String? {
        let fields = try node.mapping(allowed: ["transfer_to"])
        guard let targetNode = fields["transfer_to"] else { return nil }
        let target = try targetNode.string()
        do {
            _ = try TransferTarget.parse(target)
        } catch {
            throw targetNode.error("\(error)")
        }
        return target
    }

    private static func parseMatch(_ node: ConfigNode?, in route: ConfigNode) throws -> Match {
        guard let node else { return .any }
        let fields = try node.mapping(allowed: ["exact", "prefix", "regex"])
        guard fields.count == 1, let (kind, value) = fields.first else { throw node.error("match needs exactly one of exact, prefix, regex") }
        let text = try value.string()
        switch kind {
        case "exact": return .exact(text)
        case "prefix": return text.isEmpty ? .any : .prefix(text)
        default:
            guard let box = NSRegularExpressionBox(text) else { throw value.error("invalid regular expression '\(text)'") }
            return .regex(text, box)
        }
    }

    private static let agentKeys = Set(["url"] + AgentRouteSettings.keys)

    private static func parseAction(_ kind: String, _ node: ConfigNode, base: URL) throws -> Action {
        switch kind {
        case "agent":
            let fields = try node.mapping(allowed: agentKeys)
            let url = try fields["url"].required("url", in: node).string()
            do {
                return .remoteAgent(url: try AgentURL(parsing: url))
            } catch {
                throw fields["url"]!.error("\(error)")
            }
        case "embedded":
            let name = try node.string()
            guard name == "demo" else { throw node.error("unknown embedded agent '\(name)' (known: demo)") }
            return .embeddedDemo
        case "flow":
            return .flow(try CallFlow.parse(node, base: base))
        default:
            if (try? node.string()) == "identity" { return .reject(status: nil) }
            return .reject(status: try node.int(in: 400...699))
        }
    }
}

/// NSRegularExpression is immutable and thread-safe once built, but not marked Sendable.
public struct NSRegularExpressionBox: @unchecked Sendable {
    let expression: NSRegularExpression

    init?(_ pattern: String) {
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return nil }
        self.expression = expression
    }

    func matchesWhole(_ text: String) -> Bool {
        let range = NSRange(text.startIndex..., in: text)
        guard let match = expression.firstMatch(in: text, options: [.anchored], range: range) else { return false }
        return match.range == range
    }
}
