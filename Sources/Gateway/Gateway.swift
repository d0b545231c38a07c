import Agent
import CallFlow
import Compliance
import Foundation
import Identity
import Logging
import Media
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SecureCapture
import SIP

/// What every call shares: configuration, the SIP endpoint, ports, prompts, records. Immutable or thread-safe.
final class GatewayServices: Sendable {
    let configuration: GatewayConfiguration
    let logger: Logger
    let portPool: RTPPortPool
    let prompts: Prompts
    let recordWriter: CallRecordWriter
    let recentCalls = RecentCalls()
    let trunkHealth = TrunkHealth()
    /// Each registering trunk's latest state, by trunk name (written on the sofia thread, read by the admin API).
    let registrations: NIOLockedValueBox<[String: TrunkRegistration]>
    let metrics = GatewayMetrics()
    /// Per-source INVITE rate and bans; touched on the sofia thread (admission), boxed to stay `Sendable`.
    let sourceGuard: NIOLockedValueBox<SourceGuard>
    let calls = NIOLockedValueBox<[SIPCallLegID: Call]>([:])
    /// Legs whose INVITE waits for its identity verdict, with how sofia ended them meanwhile (CANCEL).
    let pendingAdmissions = NIOLockedValueBox<[SIPCallLegID: SIPTermination?]>([:])
    /// STIR/SHAKEN verifier, when `identity` is configured.
    let verifier: IdentityVerifier?
    /// Entered when a call is admitted, left when its record is written: shutdown waits on it.
    let callsInFlight = DispatchGroup()
    /// HTTP client for payment sinks, when any is configured (globally or on a route).
    let paymentClient: PaymentSinkClient?
    /// Each flow route's audio, by route name: prompts converted and fixed speech rendered at startup.
    let flowAudio: [String: FlowAudio]
    /// The compliance store and disclosure prompts, when `compliance:` is configured (campaign calls need them).
    let compliance: CampaignCompliance?
    /// Who waits for a call to end (campaigns run in this process).
    let callEnds = CallEndWaiters()
    // Set once in `Gateway.start` before any event can arrive.
    nonisolated(unsafe) var sip: SIPEndpoint!

    init(configuration: GatewayConfiguration, logger: Logger, prompts: Prompts, recordWriter: CallRecordWriter,
         compliance: CampaignCompliance?) throws {
        self.compliance = compliance
        self.verifier = try configuration.identity.map { try IdentityVerifier(configuration: $0, logger: logger) }
        self.configuration = configuration
        self.logger = logger
        self.portPool = RTPPortPool(range: configuration.media.rtpPorts)
        self.sourceGuard = NIOLockedValueBox(SourceGuard(policy: configuration.sip.limits))
        let now = Date()
        self.registrations = NIOLockedValueBox(Dictionary(uniqueKeysWithValues: configuration.trunks.filter { $0.registration != nil }
            .map { ($0.name, TrunkRegistration(trunk: $0.name, since: now)) }))
        self.prompts = prompts
        self.recordWriter = recordWriter
        let sinks = configuration.secureCapture.sink != nil || configuration.dialplan.routes.contains { $0.secureCapture?.sink != nil }
        self.paymentClient = sinks ? PaymentSinkClient() : nil
        self.flowAudio = try FlowAudio.forRoutes(of: configuration.dialplan)
    }

    /// A call's secure-capture state for its route: the route's settings over the global ones.
    func secureCapture(for route: Dialplan.Route) -> CallSecureCapture {
        let policy = SecureCaptureSettings.policy(global: configuration.secureCapture, route: route.secureCapture)
        guard let configuration = policy.sink, let paymentClient else { return CallSecureCapture(policy: policy, sink: nil) }
        return CallSecureCapture(policy: policy, sink: paymentClient.sink(for: configuration))
    }

    /// What answers a route's calls: its name for the record and how to make one per call; nil for `reject`.
    func agentFactory(for route: Dialplan.Route, logger: Logger) -> (name: String, make: (EventLoop) -> CallAgent)? {
        switch route.action {
        case .reject:
            return nil
        case .embeddedDemo:
            let prompts = self.prompts
            return ("embedded:demo", { _ in ScriptedAgent(greeting: prompts.greeting, digits: prompts.digits, goodbye: prompts.goodbye) })
        case .flow(let flow):
            guard let audio = flowAudio[route.name] else { return nil }
            return ("flow:\(route.name)", { loop in FlowAgent(flow: flow, audio: audio, eventLoop: loop, logger: logger) })
        case .remoteAgent(let agentURL):
            let connect = AgentConnectPolicy(
                timeout: .milliseconds(Int64(configuration.agentConnectTimeoutMilliseconds)),
                attempts: configuration.agentConnectAttempts,
                backoff: .milliseconds(Int64(configuration.agentConnectBackoffMilliseconds)))
            let format = route.agentAudio
            let authorization = route.agentSettings.authorization
            return (agentURL.description, { loop in
                TwilioMediaStreamAgent(
                    url: agentURL, eventLoop: loop, logger: logger, connect: connect, authorization: authorization, mediaFormat: format)
            })
        }
    }

    /// The call is over: write its record and forget it. Called on the call's loop.
    func finish(_ call: Call) {
        // Digits still on their way to the payment sink: the record waits for its answer (Call+SecureCapture).
        guard call.recordMayBeWritten() else { return }
        let live = calls.withLockedValue { calls in
            calls[call.leg] = nil
            return calls.count
        }
        metrics.liveCalls(live)
        write(call.record)
        callsInFlight.leave()
    }

    /// A call starts: it is found by its leg from now on, and shutdown waits for it.
    func track(_ call: Call) {
        callsInFlight.enter()
        let live = calls.withLockedValue { calls in
            calls[call.leg] = call
            return calls.count
        }
        metrics.liveCalls(live)
    }

    func write(_ record: CallRecord) {
        recentCalls.remember(record)
        metrics.recordWritten(record)
        defer { callEnds.ended(record) }
        do {
            try recordWriter.write(record)
        } catch {
            logger.error("could not write call record", metadata: ["call": "\(record.callSid)", "error": "\(error)"])
        }
        // Logged after the record is on disk, so whoever follows the log can read it.
        logger.info("call ended", metadata: [
            "call": "\(record.callSid)", "sip_status": "\(record.sipStatus.map(String.init) ?? "-")",
            "hangup_by": "\(record.hangupBy ?? "-")", "reason": "\(record.hangupReason ?? "-")",
            "duration_s": "\(record.durationSeconds)",
        ])
    }
}

// `Call` objects cross from the sofia thread to their loop only inside `calls`, and are touched only on their loop.
extension Call: @unchecked Sendable {}

/// The running gateway: SIP signalling in, calls routed to agents, records out.
public final class Gateway: Sendable {
    let services: GatewayServices
    let group: MultiThreadedEventLoopGroup
    private let healthChecks = NIOLockedValueBox<Task<Void, Never>?>(nil)

    /// - Parameter complianceStore: the open store when `compliance:` is configured; campaign calls refuse without it.
    public init(configuration: GatewayConfiguration, logger: Logger, complianceStore: ComplianceStore? = nil) throws {
        let prompts = try Prompts.load(folder: configuration.prompts)
        let writer = try CallRecordWriter(path: configuration.callRecords)
        var compliance: CampaignCompliance?
        if let complianceStore, let settings = configuration.compliance {
            compliance = try CampaignCompliance(store: complianceStore, settings: settings, promptsFolder: configuration.prompts)
        }
        self.services = try GatewayServices(configuration: configuration, logger: logger, prompts: prompts, recordWriter: writer,
                                            compliance: compliance)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    }

    /// Binds SIP and starts taking calls.
    public func start() throws {
        let config = services.configuration
        services.sip = SIPEndpoint(
            configuration: .init(
                host: config.sip.listen, port: config.sip.port, userAgent: "Trunkline/0.1",
                tls: config.sip.tls.map { .init(port: $0.port, certificateDirectory: $0.certificateDirectory, verifyServers: $0.verifyServers) }),
            logger: services.logger
        ) { [services, group] event in
            Self.handle(event, services: services, group: group)
        }
        try services.sip.start()
        for trunk in config.trunks {
            guard let registration = trunk.registration else { continue }
            services.sip.register(OutgoingRegistration(
                name: trunk.name, registrar: registration.registrar.optionsURI,
                addressOfRecord: "sip:\(registration.credentials.username)@\(registration.registrar.host)",
                credentials: registration.credentials, expiresSeconds: registration.expiresSeconds))
        }
        healthChecks.withLockedValue { [services] in
            $0 = Task { await services.trunkHealth.monitor(trunks: config.trunks, sip: services.sip, metrics: services.metrics, logger: services.logger) }
        }
        services.logger.notice("trunkline ready", metadata: [
            "sip": "\(config.sip.listen):\(config.sip.port)", "rtp_ports": "\(config.media.rtpPorts)",
            "routes": "\(config.dialplan.routes.count)", "call_records": "\(config.callRecords)",
        ])
    }

    /// Ends calls (nua sends BYE), waits for their records, then stops media.
    public func shutdown() {
        healthChecks.withLockedValue { $0?.cancel() }
        services.sip?.shutdown()
        // Calls whose peer never answered our BYE are ended here, so that every call still gets its record.
        for call in services.calls.withLockedValue({ Array($0.values) }) {
            call.eventLoop.execute { call.terminated(.failed(status: 0, phrase: "gateway shut down")) }
        }
        // Each terminated dialog was handed to its call's loop; let those finish so no record is lost.
        if services.callsInFlight.wait(timeout: .now() + 5) == .timedOut {
            services.logger.error("calls still open at shutdown; their records are incomplete", metadata: ["calls": "\(activeCalls)"])
        }
        services.paymentClient?.shutdown()
        try? group.syncShutdownGracefully()
    }

    public var activeCalls: Int { services.calls.withLockedValue { $0.count } }

    /// Every registering trunk's state, by trunk name.
    public var registrations: [TrunkRegistration] {
        services.registrations.withLockedValue { $0.values.sorted { $0.trunk < $1.trunk } }
    }

    // MARK: - Sofia thread

    private static func handle(_ event: SIPEvent, services: GatewayServices, group: EventLoopGroup) {
        switch event {
        case .invite(let invite):
            admit(invite, services: services, group: group)
        case .established(let leg):
            guard let call = services.calls.withLockedValue({ $0[leg] }) else { return }
            call.eventLoop.execute { call.established() }
        case .progress(let leg, let status, let sdp):
            guard let call = services.calls.withLockedValue({ $0[leg] }) else { return }
            call.eventLoop.execute { call.progress(status: status, sdp: sdp) }
        case .answered(let leg, let sdp):
            guard let call = services.calls.withLockedValue({ $0[leg] }) else { return }
            call.eventLoop.execute { call.answered(sdp: sdp) }
        case .reinvite(let leg, let sdp):
            guard let call = services.calls.withLockedValue({ $0[leg] }) else {
                return services.sip.respond(leg, status: 481, phrase: "Call/Transaction Does Not Exist")
            }
            call.eventLoop.execute { call.reinvite(sdp: sdp) }
        case .refer(let leg, let progress):
            guard let call = services.calls.withLockedValue({ $0[leg] }) else { return }
            call.eventLoop.execute { call.referProgress(progress) }
        case .infoDigit(let leg, let digit, _):
            guard let call = services.calls.withLockedValue({ $0[leg] }) else { return }
            call.eventLoop.execute { call.receivedDigit(digit, from: .info) }
        case .terminated(let leg, let termination):
            let pending = services.pendingAdmissions.withLockedValue { pending in
                guard pending.keys.contains(leg) else { return false }
                pending[leg] = .some(termination)
                return true
            }
            guard !pending, let call = services.calls.withLockedValue({ $0[leg] }) else { return }
            call.eventLoop.execute { call.terminated(termination) }
        case .registration(let trunk, let status):
            services.noteRegistration(trunk: trunk, status)
        }
    }

    /// Trunk → caller identity → route → SDP for a new INVITE; either a call is set up or the INVITE is rejected
    /// with the reason logged and recorded.
    private static func admit(_ invite: IncomingInvite, services: GatewayServices, group: EventLoopGroup) {
        guard services.screen(invite) else { return }
        var admission = Admission(invite: invite, services: services)
        let config = services.configuration
        guard let trunk = config.trunk(forSource: invite.source.host) else {
            services.failedAttempt(from: invite.source.host)
            return admission.reject(403, "Forbidden", reason: "source \(invite.source.host) matches no trunk")
        }
        admission.record.trunk = trunk.name
        guard admission.authenticate(trunk: trunk) else { return }
        // Bodies and answers we cannot speak are refused before routing (RFC 3261 §21.4.7, §21.4.13).
        if let accepted = invite.acceptedBodyTypes, !accepted.contains(where: { ["application/sdp", "application/*", "*/*"].contains($0) }) {
            return admission.reject(406, "Not Acceptable", reason: "caller does not accept application/sdp answers")
        }
        if let type = invite.contentType?.lowercased(), type != "application/sdp", invite.body?.isEmpty == false {
            return admission.reject(415, "Unsupported Media Type", reason: "body type \(type) is not SDP", headers: ["Accept: application/sdp"])
        }
        let carrier = trunk.trustVerstat
            ? CarrierVerstat.find(
                twilioVerStat: invite.extensionHeaders.first { $0.name.lowercased() == "x-twilio-verstat" }?.value,
                pAssertedIdentity: invite.assertedIdentity.map { [$0] } ?? [], from: invite.from.text)
            : nil
        guard let verifier = services.verifier, trunk.verifyIdentity, !(trunk.preferVerstat && carrier != nil) else {
            let verdict = IdentityVerdict.combine(local: IdentityVerdict(status: .absent), carrier: carrier, preferCarrier: true)
            return admission.route(trunk: trunk, verdict: verdict, group: group)
        }
        // Verification may fetch a certificate: off the sofia thread. A CANCEL meanwhile is noted in
        // `pendingAdmissions` and wins.
        services.pendingAdmissions.withLockedValue { $0[invite.leg] = .some(nil) }
        let caller = invite.assertedIdentity ?? invite.from.text
        Task {
            let local = await verifier.verify(identityHeaders: invite.identityHeaders, caller: caller, called: admission.called, now: Date())
            let verdict = IdentityVerdict.combine(local: local, carrier: carrier, preferCarrier: trunk.preferVerstat)
            let ended = services.pendingAdmissions.withLockedValue { $0.removeValue(forKey: invite.leg) ?? nil }
            if let ended {
                admission.record.identity(verdict)
                return admission.recordEndedWhileVerifying(ended)
            }
            admission.route(trunk: trunk, verdict: verdict, group: group)
        }
    }
}

/// One INVITE on its way to becoming a call: its record so far and how to refuse it.
private struct Admission: Sendable {
    let invite: IncomingInvite
    let services: GatewayServices
    var record: CallRecord
    var logger: Logger
    let called: String
    let caller: String

    init(invite: IncomingInvite, services: GatewayServices) {
        self.invite = invite
        self.services = services
        called = invite.requestUser ?? invite.to.user ?? ""
        caller = invite.from.user ?? ""
        record = CallRecord(
            callSid: TwilioIdentifier.make(prefix: "CA"), sipCallId: invite.callID, from: caller, to: called,
            source: "\(invite.source.transport.rawValue):\(invite.source.host):\(invite.source.port)", startTime: Date())
        logger = services.logger
        logger[metadataKey: "call"] = "\(record.callSid)"
        logger[metadataKey: "sip_call_id"] = "\(invite.callID)"
    }

    mutating func reject(_ status: Int, _ phrase: String, reason: String, headers: [String] = []) {
        logger.warning("INVITE rejected", metadata: [
            "status": "\(status)", "reason": "\(reason)", "source": "\(record.source)", "from": "\(caller)", "to": "\(called)",
        ])
        services.sip.respond(invite.leg, status: status, phrase: phrase, headers: headers)
        record.sipStatus = status
        record.hangupBy = "gateway"
        record.hangupReason = reason
        record.endTime = Date()
        services.write(record)
    }

    /// Digest authentication for trunks that require it: false when the INVITE was answered with a challenge
    /// (not a call, not recorded) or refused for wrong credentials (recorded, and counted against the source).
    mutating func authenticate(trunk: GatewayConfiguration.Trunk) -> Bool {
        switch trunk.authenticate(invite, now: Date().timeIntervalSince1970) {
        case .admitted:
            return true
        case .challenge(let headers):
            logger.debug("INVITE challenged for digest credentials", metadata: ["trunk": "\(trunk.name)", "source": "\(record.source)"])
            services.sip.respond(invite.leg, status: 401, phrase: "Unauthorized", headers: headers)
        case .failed(let reason, let headers):
            services.failedAttempt(from: invite.source.host)
            reject(401, "Unauthorized", reason: "digest authentication failed: \(reason)", headers: headers)
        }
        return false
    }

    /// The caller gave up (CANCEL) while its identity was being verified.
    mutating func recordEndedWhileVerifying(_ termination: SIPTermination) {
        record.sipStatus = termination == .cancelled ? 487 : nil
        record.hangupBy = "caller"
        record.hangupReason = "caller cancelled before answer"
        record.endTime = Date()
        services.write(record)
    }

    /// Route → SDP → a call on the next loop.
    mutating func route(trunk: GatewayConfiguration.Trunk, verdict: IdentityVerdict, group: EventLoopGroup) {
        let config = services.configuration
        record.identity(verdict)
        guard let route = config.dialplan.route(number: called, trunk: trunk.name, identity: verdict) else {
            return reject(404, "Not Found", reason: "no route for '\(called)' on trunk \(trunk.name)")
        }
        record.route = route.name
        switch route.action {
        case .reject(let status?):
            return reject(status, SIPStatusPhrase.phrase(for: status), reason: "route \(route.name) rejects")
        case .reject(nil):
            let status = verdict.reason?.sipStatus ?? 403
            let phrase = verdict.reason?.code.sipReasonPhrase ?? "Forbidden"
            return reject(status, phrase, reason: "route \(route.name) rejects caller identity \(verdict.verstat)")
        case .embeddedDemo, .remoteAgent, .flow:
            break
        }
        guard let agent = services.agentFactory(for: route, logger: logger) else { return }
        record.agent = agent.name
        let makeAgent = agent.make

        guard let body = invite.body, !body.isEmpty else {
            return reject(488, "Not Acceptable Here", reason: "INVITE without SDP offer (delayed offer) is not supported")
        }
        let offer: SessionDescription
        do {
            offer = try SessionDescription(parsing: body)
        } catch {
            return reject(400, "Bad Request", reason: "malformed SDP: \(error)")
        }
        let media: CallMedia
        switch trunk.offerAnswer(agentSampleRate: route.agentAudio.sampleRate).negotiate(offer: offer) {
        case .notAcceptable(let why):
            return reject(488, "Not Acceptable Here", reason: why)
        case .agreed(let agreed):
            switch CallMedia.make(agreed) {
            case .failure(let refusal): return reject(488, "Not Acceptable Here", reason: refusal.reason)
            case .success(let plan): media = plan
            }
        }
        record.codec = media.codec.name
        record.srtp = media.srtp?.suite.rawValue

        let context = CallContext(
            callSid: record.callSid, accountSid: config.accountSid, from: caller, to: called, trunk: trunk.name,
            route: route.name, sipCallID: invite.callID, extraParameters: verdict.parameters.map { (name: $0.0, value: $0.1) }
                + ContextHeaders.parameters(from: invite.extensionHeaders, allowed: trunk.contextHeaders))
        let loop = group.next()
        let call = Call(
            leg: invite.leg, eventLoop: loop, services: services, media: media, agentSampleRate: route.agentAudio.sampleRate,
            symmetricRTP: trunk.symmetricRTP, ringMilliseconds: route.ringMilliseconds, context: context, record: record,
            secureCapture: services.secureCapture(for: route), dtmf: route.dtmf ?? trunk.dtmf, agentSettings: route.agentSettings,
            makeAgent: makeAgent)
        call.renegotiation = trunk.offerAnswer(agentSampleRate: route.agentAudio.sampleRate)
        call.fallbackTransferTarget = route.fallbackTransferTo
        services.track(call)
        logger.info("INVITE accepted", metadata: [
            "trunk": "\(trunk.name)", "route": "\(route.name)", "from": "\(caller)", "to": "\(called)", "identity": "\(verdict.verstat)",
        ])
        loop.execute { call.setUp() }
    }
}

/// Reason phrases for the statuses a route may reject with (RFC 3261 §21).
enum SIPStatusPhrase {
    static func phrase(for status: Int) -> String {
        switch status {
        case 403: "Forbidden"
        case 404: "Not Found"
        case 480: "Temporarily Unavailable"
        case 486: "Busy Here"
        case 488: "Not Acceptable Here"
        case 503: "Service Unavailable"
        case 603: "Decline"
        default: "Rejected"
        }
    }
}
