import Agent
import Foundation
import Identity
import Logging
import Media
import NIOCore
import SIP

/// A call to place: through which trunk, to whom, as whom, and which route's agent takes it when answered.
public struct OutboundCallRequest: Sendable {
    public var trunk: String
    public var to: String
    public var from: String
    /// A dialplan route by name; its action (agent or demo) answers the call.
    public var route: String
    /// Extra `customParameters` for the agent (campaign and consent ids, …).
    public var parameters: [(name: String, value: String)]
    /// Overrides the trunk's ring timeout.
    public var ringTimeoutSeconds: Int?

    public init(
        trunk: String, to: String, from: String, route: String, parameters: [(name: String, value: String)] = [],
        ringTimeoutSeconds: Int? = nil
    ) {
        self.trunk = trunk
        self.to = to
        self.from = from
        self.route = route
        self.parameters = parameters
        self.ringTimeoutSeconds = ringTimeoutSeconds
    }
}

/// Why a call could not be placed at all (nothing was sent).
public enum OutboundCallError: Error, Equatable, CustomStringConvertible {
    case unknownTrunk(String)
    case trunkHasNoOutbound(String)
    case unknownRoute(String)
    case routeHasNoAgent(String)
    /// Not a dialable number: only digits, an optional leading `+`, and `*#` are allowed (no SIP syntax).
    case invalidNumber(String)
    /// A campaign's call on a gateway whose config has no `compliance:` section: it could play no disclosure and
    /// take no opt-out.
    case campaignWithoutCompliance

    public var description: String {
        switch self {
        case .unknownTrunk(let name): "no trunk named '\(name)'"
        case .trunkHasNoOutbound(let name): "trunk '\(name)' has no outbound settings"
        case .unknownRoute(let name): "no route named '\(name)'"
        case .routeHasNoAgent(let name): "route '\(name)' rejects calls; it cannot answer one we place"
        case .invalidNumber(let text): "'\(text)' is not a dialable number (digits, optional leading +)"
        case .campaignWithoutCompliance: "campaign calls need the gateway's compliance: section (disclosure, opt-out)"
        }
    }
}

extension Gateway {
    /// Sends an INVITE through the trunk and returns the new call at once (status `ringing`); how it ends is in
    /// its record (`outcome`: answered, busy, no-answer, failed, canceled).
    public func placeCall(_ request: OutboundCallRequest) throws(OutboundCallError) -> CallSummary {
        let config = services.configuration
        guard let trunk = config.trunks.first(where: { $0.name == request.trunk }) else { throw .unknownTrunk(request.trunk) }
        guard let outbound = trunk.outbound else { throw .trunkHasNoOutbound(trunk.name) }
        guard let route = config.dialplan.routes.first(where: { $0.name == request.route }) else { throw .unknownRoute(request.route) }
        guard DialableNumber.isValid(request.to) else { throw .invalidNumber(request.to) }
        guard DialableNumber.isValid(request.from) else { throw .invalidNumber(request.from) }
        let campaign = try CallCampaign(parameters: request.parameters, to: request.to,
                                        disclosure: services.compliance?.settings.disclosure ?? DisclosureSettings())
        if campaign != nil, services.compliance == nil { throw .campaignWithoutCompliance }

        let callID = UUID().uuidString.lowercased() + "@trunkline"
        var record = CallRecord(
            callSid: TwilioIdentifier.make(prefix: "CA"), sipCallId: callID, from: request.from, to: request.to,
            source: "out:\(outbound.addresses[0])", startTime: Date())
        record.direction = "outbound-api"
        record.trunk = trunk.name
        record.route = route.name
        var logger = services.logger
        logger[metadataKey: "call"] = "\(record.callSid)"
        logger[metadataKey: "sip_call_id"] = "\(callID)"
        guard let agent = services.agentFactory(for: route, logger: logger) else { throw .routeHasNoAgent(route.name) }
        record.agent = agent.name

        let context = CallContext(
            callSid: record.callSid, accountSid: config.accountSid, from: request.from, to: request.to, trunk: trunk.name,
            route: route.name, sipCallID: callID,
            extraParameters: [(name: "direction", value: "outbound-api")] + request.parameters)
        let leg = services.sip.reserveLeg()
        let loop = group.next()
        let call = Call(
            leg: leg, eventLoop: loop, services: services, media: nil, agentSampleRate: route.agentAudio.sampleRate,
            symmetricRTP: trunk.symmetricRTP,
            ringMilliseconds: 0, context: context, record: record, secureCapture: services.secureCapture(for: route),
            dtmf: route.dtmf ?? trunk.dtmf, agentSettings: route.agentSettings, makeAgent: agent.make)
        call.fallbackTransferTarget = route.fallbackTransferTo
        call.campaign = campaign
        let dial = Call.Dial(
            invite: OutboundInvite(outbound: outbound, to: request.to, from: request.from, callID: callID,
                                   order: services.trunkHealth.order(outbound.addresses)),
            ringTimeout: .seconds(Int64(request.ringTimeoutSeconds ?? outbound.ringTimeoutSeconds)),
            offer: CallMedia.offer(for: trunk, agentSampleRate: route.agentAudio.sampleRate))
        services.track(call)
        logger.info("placing call", metadata: ["trunk": "\(trunk.name)", "route": "\(route.name)", "to": "\(request.to)", "from": "\(request.from)"])
        loop.execute { call.dial(dial) }
        return CallSummary(record: record)
    }
}

/// Numbers that go into SIP URIs and headers we build: nothing that SIP syntax could read as structure.
enum DialableNumber {
    static func isValid(_ text: String) -> Bool {
        let body = text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        return (1...32).contains(body.count) && body.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "*" || $0 == "#") }
    }
}

/// The INVITE for a call we place, as the trunk wants it: Request-URIs in failover order, caller-ID headers,
/// credentials.
struct OutboundInvite: Sendable {
    let outbound: GatewayConfiguration.Outbound
    let to: String
    let from: String
    let callID: String
    /// Termination addresses, healthy ones first.
    let order: [TerminationAddress]

    /// Throws when the trunk signs (STIR/SHAKEN) and the numbers cannot be signed: such a call is not sent.
    func sipInvite(sdp: String) throws -> OutgoingInvite {
        let domain = outbound.fromDomain ?? order[0].host
        let callerURI = "sip:\(from)@\(domain)"
        var headers: [String] = []
        switch outbound.callerIDHeader {
        case .from: break
        case .pAssertedIdentity: headers.append("P-Asserted-Identity: <\(callerURI)>")
        case .pPreferredIdentity: headers.append("P-Preferred-Identity: <\(callerURI)>")
        }
        if let signing = outbound.signing {
            // Signed at send time, so `iat` is fresh for the verifier's 60 s window.
            let signed = try signing.signer.sign(orig: from, dest: [to], attest: signing.attestation, iat: Date())
            headers.append("Identity: \(signed.identityHeader)")
        }
        let fromHeader: String
        if outbound.privacy {
            headers.append("Privacy: id")
            fromHeader = "\"Anonymous\" <sip:anonymous@anonymous.invalid>"
        } else {
            fromHeader = "<\(callerURI)>"
        }
        return OutgoingInvite(
            requestURIs: order.map { $0.requestURI(user: to) }, from: fromHeader, to: "<sip:\(to)@\(order[0].host)>",
            callID: callID, sdp: sdp, headers: headers, credentials: outbound.credentials,
            responseTimeout: outbound.inviteTimeout)
    }
}
