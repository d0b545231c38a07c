import CSofiaSIP
import Foundation
import Logging
import SofiaShim
import Synchronization

/// A SIP user agent on sofia-sip's nua, running sofia's `su_root` loop on a dedicated thread.
///
/// Thread contract: the public methods may be called from any thread; they post a command to the sofia thread
/// and return at once. Events are delivered on the sofia thread through `eventHandler`, which must not block.
/// Sofia pointers never leave this module: calls are named by `SIPCallLegID`.
public final class SIPEndpoint: Sendable {
    public struct Configuration: Sendable {
        /// Address to listen on (UDP and TCP), e.g. 127.0.0.1.
        public var host: String
        public var port: Int
        public var userAgent: String
        /// SIP over TLS besides UDP and TCP: the port and sofia's certificate folder (`agent.pem`, `cafile.pem`).
        public var tls: TLS?

        public struct TLS: Sendable {
            public var port: Int
            public var certificateDirectory: String
            /// Whether a TLS connection we open (to a trunk or registrar) needs a server certificate that chains to
            /// `cafile.pem` and names the host; without it, anyone on the path could take the call.
            public var verifyServers: Bool
            public init(port: Int, certificateDirectory: String, verifyServers: Bool = true) {
                self.port = port
                self.certificateDirectory = certificateDirectory
                self.verifyServers = verifyServers
            }
        }

        public init(host: String, port: Int, userAgent: String = "Trunkline", tls: TLS? = nil) {
            self.host = host
            self.port = port
            self.userAgent = userAgent
            self.tls = tls
        }
    }

    public enum StartError: Error, CustomStringConvertible {
        case bindFailed(String)
        public var description: String {
            switch self {
            case .bindFailed(let url): "cannot listen for SIP on \(url) (address in use or not local?)"
            }
        }
    }

    let stack: SofiaStack

    public init(configuration: Configuration, logger: Logger, eventHandler: @escaping @Sendable (SIPEvent) -> Void) {
        self.stack = SofiaStack(configuration: configuration, logger: logger, eventHandler: eventHandler)
    }

    /// Starts the sofia thread and binds the listening sockets; throws if they cannot be bound.
    public func start() throws {
        try stack.startThread()
    }

    /// Sends a final or provisional response to an INVITE, with an SDP body and extra header lines
    /// (`"Accept: application/sdp"`) if given.
    public func respond(_ leg: SIPCallLegID, status: Int, phrase: String, sdp: String? = nil, headers: [String] = []) {
        stack.post { $0.doRespond(leg, status: status, phrase: phrase, sdp: sdp, headers: headers) }
    }

    /// A new leg id for a call we are about to place, so the caller can file the call under it before any
    /// event about it can arrive.
    public func reserveLeg() -> SIPCallLegID {
        SIPCallLegID(rawValue: stack.allocateLeg())
    }

    /// Places a call on a reserved leg; progress, answer or failure arrive as events (`progress`, `answered`,
    /// `established`, `terminated`). When the INVITE draws no usable answer from one Request-URI (503, 408,
    /// transport error) the next of `invite.requestURIs` is tried on the same leg.
    public func invite(_ invite: OutgoingInvite, on leg: SIPCallLegID) {
        stack.post { $0.doInvite(leg.rawValue, invite) }
    }

    /// Sends OPTIONS to `uri` and returns the final status (408 or 503 when nothing answered, 408 too when
    /// nothing answered within `timeout`, which may be shorter than sofia's Timer F).
    public func options(_ uri: String, timeout: Duration? = nil) async -> Int {
        await withCheckedContinuation { continuation in
            let id = stack.allocateLeg()
            stack.post { $0.doOptions(id, uri: uri, timeout: timeout, continuation: continuation) }
        }
    }

    /// Leaves an INVITE without a final response (a banned source): its transaction is held, absorbing the
    /// sender's retransmissions, until the sender has given up (Timer B, 32 s), then released. Releasing it
    /// earlier would make nua answer 480. Only sofia's automatic 100 Trying has gone out.
    public func discard(_ leg: SIPCallLegID) {
        stack.post { $0.doDiscard(leg) }
    }

    /// Ends an established call with BYE, an unanswered incoming one with 480, an unanswered outgoing one with
    /// CANCEL.
    public func hangUp(_ leg: SIPCallLegID, reason: String? = nil) {
        stack.post { $0.doBye(leg, reason: reason) }
    }

    /// Sends an in-dialog INFO with this body (e.g. `application/dtmf-relay`, `Signal=5\r\nDuration=100\r\n`) on an
    /// established call; dropped when the leg is gone or not yet established.
    public func sendInfo(_ leg: SIPCallLegID, contentType: String, body: String) {
        stack.post { $0.doInfo(leg, contentType: contentType, body: body) }
    }

    /// Sends REFER (RFC 3515) in an established call's dialog, asking the far end to call `referTo` (a URI, with
    /// any headers to carry as URI headers); progress arrives as `refer` events. On a leg that is gone or not
    /// established the answer is a `refer` event with 481, nothing is sent.
    public func refer(_ leg: SIPCallLegID, referTo: String) {
        stack.post { $0.doRefer(leg, referTo: referTo) }
    }

    /// Shuts nua down (BYE to established calls, final answers to pending ones) and stops the thread.
    /// Blocks until nua is done, or at most `grace` when peers do not answer; legs still open then get no
    /// `terminated` event.
    public func shutdown(grace: Duration = .seconds(5)) {
        stack.shutdownAndWait(grace: grace)
    }
}

/// The sofia-side state. Thread contract: everything below `// MARK: - Sofia thread` runs on the sofia thread
/// only (the nua callback and posted commands); the rest is set once before the thread starts.
final class SofiaStack: @unchecked Sendable {
    let configuration: SIPEndpoint.Configuration
    let logger: Logger
    let eventHandler: @Sendable (SIPEvent) -> Void

    // Set on the sofia thread before `started` is signalled, then read-only; guarded by that handshake.
    private var root: OpaquePointer?
    private(set) var nua: OpaquePointer?
    private var thread: Thread?
    private let started = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private var startFailure: SIPEndpoint.StartError?

    // Protected by the sofia thread.
    private var legs: [UInt64: LegState] = [:]
    private var probes: [UInt64: (handle: OpaquePointer, continuation: CheckedContinuation<Int, Never>)] = [:]
    /// Registrations we keep (Registration.swift).
    var registrations: [UInt64: RegistrationState] = [:]
    private let nextLeg = Atomic<UInt64>(1)
    private(set) var shuttingDown = false

    private struct LegState {
        var handle: OpaquePointer
        var cause: SIPTermination?
        var established = false
        /// We sent the INVITE.
        var outgoing = false
        var credentials: DigestCredentials?
        /// A challenge was answered once already: a second one means the credentials are wrong.
        var answeredChallenge = false
        /// The INVITE being retried on other addresses, and which of its Request-URIs is in use.
        var invite: OutgoingInvite?
        var attempt = 0
        /// A response that means the far end is alive, so failing over would call the callee twice.
        var heardFromCallee = false
        /// Any response at all to this attempt (100 Trying included): the INVITE timeout no longer applies.
        var heardAnything = false
        /// The INVITE came over TLS: our Contact names the TLS transport.
        var overTLS = false
    }

    /// Leg ids are unique across both directions; an outgoing leg's id exists before its handle does.
    func allocateLeg() -> UInt64 {
        nextLeg.add(1, ordering: .relaxed).oldValue
    }

    init(configuration: SIPEndpoint.Configuration, logger: Logger, eventHandler: @escaping @Sendable (SIPEvent) -> Void) {
        self.configuration = configuration
        self.logger = logger
        self.eventHandler = eventHandler
    }

    func startThread() throws {
        SofiaLog.install(logger: logger)
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "sofia-sip"
        self.thread = thread
        thread.start()
        started.wait()
        if let startFailure { throw startFailure }
    }

    func shutdownAndWait(grace: Duration) {
        guard thread != nil, startFailure == nil else { return }
        post { $0.doShutdown() }
        let seconds = Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18
        if stopped.wait(timeout: .now() + seconds) == .timedOut {
            logger.warning("SIP shutdown did not finish in time (peers not answering BYE); stopping anyway")
            post { stack in su_root_break(stack.root) }
            stopped.wait()
        }
    }

    /// Runs `command` on the sofia thread.
    func post(_ command: @escaping @Sendable (SofiaStack) -> Void) {
        guard let root else { return }
        let box = Unmanaged.passRetained(CommandBox { command(self) })
        let result = tl_post(root, { context in
            Unmanaged<CommandBox>.fromOpaque(context!).takeRetainedValue().run()
        }, box.toOpaque())
        if result != 0 {
            box.release()
            logger.error("could not post a command to the sofia thread")
        }
    }

    /// Runs `command` on the sofia thread after `delay`. Call on the sofia thread.
    func after(_ delay: Duration, _ command: @escaping (SofiaStack) -> Void) {
        guard let root else { return }
        let milliseconds = UInt32(clamping: delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)
        let box = Unmanaged.passRetained(CommandBox { command(self) })
        let result = tl_after(root, milliseconds, { context in
            Unmanaged<CommandBox>.fromOpaque(context!).takeRetainedValue().run()
        }, box.toOpaque())
        if result != 0 {
            box.release()
            logger.error("could not arm a sofia timer")
        }
    }

    // MARK: - Sofia thread

    private func runLoop() {
        su_init()
        root = su_root_create(nil)
        let url = "sip:\(configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host):\(configuration.port)"
        let tags = SofiaTagList()
            .add(tl_nutag_url(), string: url)
            .add(tl_nutag_autoanswer(), 0)
            .add(tl_nutag_media_enable(), 0)
            // The methods we handle, replacing nua's default list (which adds MESSAGE, SUBSCRIBE, REFER and UPDATE:
            // advertised but not acted on, a peer would refresh a session by UPDATE or transfer us by REFER and get
            // nothing). nua answers a method missing here with 405 and this list. PRACK: nua's 100rel, which it
            // also lists in Supported; NOTIFY: the implied subscription of a REFER we send (nua matches and
            // answers it).
            .add(tl_siptag_allow_str(), string: "INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, INFO, NOTIFY")
            // INFO is answered by us (200, 400 or 415 by body), not by nua.
            .add(tl_nutag_appl_method(), string: "INFO")
            .add(tl_siptag_user_agent_str(), string: configuration.userAgent)
            // Answer to the packet's source port even without ;rport (RFC 3581 behaviour for every client):
            // carriers behind NAT and clients that omit rport still get their responses.
            .add(tl_ntatag_server_rport(), 2)
            // A message bigger than this is refused by sofia before it is parsed into anything we read: a carrier
            // INVITE with Identity and context headers stays under 8 KiB.
            .add(tl_ntatag_maxsize(), Self.maximumMessageSize)
            // A second copy of a request that forked back to us (same Call-ID, From tag and CSeq, another branch)
            // gets 482 Loop Detected (RFC 3261 §8.2.2.2).
            .add(tl_ntatag_merge_482(), 1)
        var transports = "udp,tcp"
        if let tls = configuration.tls {
            let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
            tags.add(tl_nutag_sips_url(), string: "sips:\(host):\(tls.port)")
            tags.add(tl_tptag_certificate(), string: tls.certificateDirectory)
            tags.add(tl_tptag_tls_verify_policy(), tls.verifyServers ? Int(tl_tls_verify_servers()) : 0)
            transports += ",tls:\(tls.port)"
        }
        nua = tags.withTags { list in
            tl_nua_create(root, { event, status, phrase, nua, magic, nh, hmagic, sip, tags in
                guard let magic else { return }
                let stack = Unmanaged<SofiaStack>.fromOpaque(magic).takeUnretainedValue()
                stack.processEvent(event, status: Int(status), phrase: phrase.map { String(cString: $0) } ?? "",
                                   nua: nua, handle: nh, legMagic: hmagic, sip: sip, tags: tags)
            }, Unmanaged.passUnretained(self).toOpaque(), list)
        }
        guard nua != nil else {
            startFailure = .bindFailed(url)
            su_root_destroy(root)
            root = nil
            su_deinit()
            started.signal()
            return
        }
        logger.info("SIP listening", metadata: ["url": "\(url)", "transports": "\(transports)"])
        started.signal()
        su_root_run(root)
        nua_destroy(nua)
        su_root_destroy(root)
        su_deinit()
        stopped.signal()
    }

    private func processEvent(
        _ event: nua_event_t, status: Int, phrase: String, nua: OpaquePointer?, handle: OpaquePointer?,
        legMagic: UnsafeMutableRawPointer?, sip: UnsafePointer<sip_t>?, tags: UnsafeMutablePointer<tagi_t>?
    ) {
        let leg = legMagic.map { UInt64(UInt(bitPattern: $0)) }
        switch event {
        case nua_i_invite:
            guard let handle, let sip else { return }
            // An INVITE on a handle we already bound is a re-INVITE in that dialog.
            if let leg { return reinvite(leg: leg, handle: handle, sip: sip, nua: nua) }
            acceptInvite(handle: handle, sip: sip, nua: nua)
        case nua_i_info:
            guard let handle else { return }
            answerInfo(leg: leg, handle: handle, sip: sip, nua: nua)
        case nua_i_cancel:
            if let leg { legs[leg]?.cause = .cancelled }
        case nua_i_bye:
            if let leg { legs[leg]?.cause = .remoteBye }
        case nua_r_invite:
            guard let leg, legs[leg]?.outgoing == true else { return }
            inviteResponse(leg: leg, status: status, phrase: phrase, sip: sip)
        case nua_r_refer:
            // nua's own 100 (sent when the REFER goes out) carries no answer.
            guard let leg, legs[leg] != nil, status >= 200 else { return }
            eventHandler(.refer(SIPCallLegID(rawValue: leg), .answered(status: status, phrase: phrase)))
        case nua_i_notify:
            guard let leg, legs[leg] != nil else { return }
            // Without a message, nua ended the subscription itself (no NOTIFY before it expired).
            guard let sip else { return eventHandler(.refer(SIPCallLegID(rawValue: leg), .notified(frag: nil, terminated: true))) }
            let frag = Self.body(of: sip.pointee).flatMap(SIPFrag.parse)
            eventHandler(.refer(SIPCallLegID(rawValue: leg), .notified(frag: frag, terminated: tl_subscription_terminated(sip) == 1)))
        case nua_r_register, nua_r_unregister:
            guard let leg else { return }
            registerResponse(leg, status: status, phrase: phrase, sip: sip)
        case nua_r_options:
            guard let leg, status >= 200, let probe = probes.removeValue(forKey: leg) else { return }
            nua_handle_bind(probe.handle, nil)
            nua_handle_destroy(probe.handle)
            probe.continuation.resume(returning: status)
        case nua_i_state:
            guard let leg, var state = legs[leg] else { return }
            let callState = tl_callstate(tags)
            if callState == Int32(nua_callstate_ready.rawValue), !state.established {
                state.established = true
                legs[leg] = state
                eventHandler(.established(SIPCallLegID(rawValue: leg)))
            } else if callState == Int32(nua_callstate_terminated.rawValue) {
                legEnded(leg, state, status: status, phrase: phrase)
            }
        case nua_r_shutdown:
            if status >= 200 { su_root_break(root) }
        default:
            // Out-of-dialog requests nua answered itself (OPTIONS → 200, unknown methods → 405/501) leave an
            // unbound handle behind: release it.
            if legMagic == nil, let handle, nua_event_is_incoming_request(event) != 0 {
                nua_handle_destroy(handle)
            }
        }
    }

    /// The leg's handle is done: release it, then try the next address or report the end.
    private func legEnded(_ leg: UInt64, _ state: LegState, status: Int, phrase: String) {
        legs[leg] = nil
        nua_handle_bind(state.handle, nil)
        nua_handle_destroy(state.handle)
        if let next = failover(state) {
            logger.warning("no answer from a termination address; trying the next", metadata: [
                "leg": "\(leg)", "status": "\(status)", "next": "\(next.requestURI)",
            ])
            return sendInvite(leg, next.invite, attempt: next.attempt)
        }
        eventHandler(.terminated(SIPCallLegID(rawValue: leg), state.cause ?? .failed(status: status, phrase: phrase)))
    }

    /// The INVITE timeout ran out on an attempt that drew no response at all: drop it as if it had timed out.
    private func inviteTimedOut(_ leg: UInt64, attempt: Int) {
        guard var state = legs[leg], state.attempt == attempt, !state.heardAnything, !state.established else { return }
        logger.warning("no response to INVITE within the trunk's invite timeout", metadata: [
            "leg": "\(leg)", "uri": "\(state.invite?.requestURIs[attempt] ?? "-")",
        ])
        state.cause = .declined(status: 408, phrase: "Request Timeout")
        legEnded(leg, state, status: 408, phrase: "Request Timeout")
    }

    private func acceptInvite(handle: OpaquePointer, sip: UnsafePointer<sip_t>, nua: OpaquePointer?) {
        if shuttingDown {
            tl_nua_respond(handle, 503, "Service Unavailable", nil)
            nua_handle_destroy(handle)
            return
        }
        // The INVITE may go no further (RFC 3261 §16.3): we would forward it, as a B2BUA, so answer as a proxy does.
        if let maxForwards = sip.pointee.sip_max_forwards, maxForwards.pointee.mf_count == 0 {
            SofiaTagList().withTags { tl_nua_respond(handle, 483, "Too Many Hops", $0) }
            nua_handle_destroy(handle)
            return
        }
        var host = [CChar](repeating: 0, count: 64)
        var port: Int32 = 0
        var isTCP: Int32 = 0
        guard tl_current_request_source(nua, &host, host.count, &port, &isTCP) == 0 else {
            logger.warning("INVITE without a readable source address: rejected")
            SofiaTagList().withTags { tl_nua_respond(handle, 500, "Server Internal Error", $0) }
            nua_handle_destroy(handle)
            return
        }
        let id = allocateLeg()
        nua_handle_bind(handle, UnsafeMutableRawPointer(bitPattern: UInt(id)))
        let message = sip.pointee
        var state = LegState(handle: handle)
        state.overTLS = message.sip_via.flatMap { Self.string($0.pointee.v_protocol) }?.uppercased().hasSuffix("/TLS") == true
        legs[id] = state

        let requestURI = tl_request_uri(sip).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
        } ?? ""
        let transport: SIPTransport = isTCP == 0 ? .udp : (state.overTLS ? .tls : .tcp)
        let invite = IncomingInvite(
            leg: SIPCallLegID(rawValue: id),
            callID: message.sip_call_id.map { String(cString: $0.pointee.i_id) } ?? "",
            requestUser: message.sip_request.flatMap { Self.string($0.pointee.rq_url.url_user) },
            requestURI: requestURI,
            from: Self.nameAddress(message.sip_from),
            to: Self.nameAddress(message.sip_to),
            source: SIPSource(host: String(cString: host), port: Int(port), transport: transport),
            contentType: message.sip_content_type.flatMap { Self.string($0.pointee.c_type) },
            acceptedBodyTypes: Self.acceptedTypes(message.sip_accept),
            body: Self.body(of: message),
            extensionHeaders: Self.extensionHeaders(message.sip_unknown),
            identityHeaders: Self.unknownHeaderValues(message.sip_unknown, named: ["identity", "y"], limit: 8, maximumLength: 8192),
            assertedIdentity: Self.unknownHeaderValues(message.sip_unknown, named: ["p-asserted-identity"], limit: 1, maximumLength: 2048).first,
            authorization: Self.authorization(message.sip_authorization)
        )
        eventHandler(.invite(invite))
    }

    /// A re-INVITE: the gateway answers it through `respond` (nua sends nothing by itself, media being ours).
    /// One that arrives before the call is up is refused with 491 (RFC 3261 §14.2: an offer is pending).
    private func reinvite(leg: UInt64, handle: OpaquePointer, sip: UnsafePointer<sip_t>, nua: OpaquePointer?) {
        guard let state = legs[leg], state.established else {
            // To this request, not to the first INVITE still pending on the handle.
            SofiaTagList().withTags { tl_nua_respond_current(nua, handle, 491, "Request Pending", $0) }
            return
        }
        eventHandler(.reinvite(SIPCallLegID(rawValue: leg), sdp: Self.body(of: sip.pointee)))
    }

    /// In-dialog INFO: a DTMF body becomes an event; anything else gets the matching error.
    private func answerInfo(leg: UInt64?, handle: OpaquePointer, sip: UnsafePointer<sip_t>?, nua: OpaquePointer?) {
        guard let leg, legs[leg] != nil, let sip else {
            SofiaTagList().withTags { tl_nua_respond_current(nua, handle, 481, "Call/Transaction Does Not Exist", $0) }
            if leg == nil { nua_handle_destroy(handle) }
            return
        }
        let message = sip.pointee
        let contentType = message.sip_content_type.flatMap { Self.string($0.pointee.c_type) }
        let body = message.sip_payload.flatMap { payload -> String? in
            guard let data = payload.pointee.pl_data, payload.pointee.pl_len <= 1024 else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: data, count: Int(payload.pointee.pl_len)), as: UTF8.self)
        } ?? ""
        switch DTMFInfo.parse(contentType: contentType, body: body) {
        case .digit(let key, let duration):
            SofiaTagList().withTags { tl_nua_respond_current(nua, handle, 200, "OK", $0) }
            eventHandler(.infoDigit(SIPCallLegID(rawValue: leg), key, durationMs: duration))
        case .unsupportedType:
            let accept = SofiaTagList().add(tl_siptag_header_str(), string: "Accept: " + DTMFInfo.supportedTypes.joined(separator: ", "))
            accept.withTags { tl_nua_respond_current(nua, handle, 415, "Unsupported Media Type", $0) }
        case .malformed(let why):
            logger.info("malformed DTMF INFO refused", metadata: ["leg": "\(leg)", "reason": "\(why)"])
            SofiaTagList().withTags { tl_nua_respond_current(nua, handle, 400, "Bad Request", $0) }
        }
    }

    func doRespond(_ leg: SIPCallLegID, status: Int, phrase: String, sdp: String?, headers: [String] = []) {
        guard let state = legs[leg.rawValue] else {
            logger.debug("response for a finished leg dropped", metadata: ["leg": "\(leg)", "status": "\(status)"])
            return
        }
        let tags = SofiaTagList()
        if let sdp {
            tags.add(tl_siptag_content_type_str(), string: "application/sdp")
            tags.add(tl_siptag_payload_str(), string: sdp)
        }
        for header in headers { tags.add(tl_siptag_header_str(), string: header) }
        // An error to a re-INVITE leaves the established call as it was.
        if status >= 300, !state.established { legs[leg.rawValue]?.cause = .rejected(status: status) }
        if state.overTLS, status < 300, let contact = tlsContact { tags.add(tl_siptag_contact_str(), string: contact) }
        tags.withTags { tl_nua_respond(state.handle, Int32(status), phrase, $0) }
    }

    /// Our Contact on a TLS dialog. sofia would write `sips:`, which some peers (baresip's libre) cannot route
    /// to, so their BYE never came back: `sip:…;transport=tls` is the same transport in the form every stack reads.
    private var tlsContact: String? {
        guard let tls = configuration.tls else { return nil }
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        return "<sip:\(host):\(tls.port);transport=tls>"
    }

    func doInvite(_ id: UInt64, _ invite: OutgoingInvite) {
        sendInvite(id, invite, attempt: 0)
    }

    /// The next Request-URI to try when this attempt failed before the callee was reached: no response (408),
    /// or the address refused service or could not be reached (503).
    private func failover(_ state: LegState) -> (invite: OutgoingInvite, attempt: Int, requestURI: String)? {
        guard let invite = state.invite, !state.heardFromCallee, !shuttingDown, state.attempt + 1 < invite.requestURIs.count else { return nil }
        // Every final response to our INVITE (sofia's own 408/503 for timeouts and transport errors included)
        // is recorded as `declined` by `inviteResponse`.
        guard case .declined(let status, _) = state.cause, status == 408 || status == 503 else { return nil }
        return (invite, state.attempt + 1, invite.requestURIs[state.attempt + 1])
    }

    private func sendInvite(_ id: UInt64, _ invite: OutgoingInvite, attempt: Int) {
        let handle = SofiaTagList()
            .add(tl_siptag_to_str(), string: invite.to)
            .add(tl_siptag_from_str(), string: invite.from)
            .add(tl_siptag_call_id_str(), string: invite.callID)
            .withTags { tl_nua_handle(nua, UnsafeMutableRawPointer(bitPattern: UInt(id)), $0) }
        guard let handle else {
            logger.error("could not create a SIP handle for an outgoing call", metadata: ["leg": "\(id)"])
            eventHandler(.terminated(SIPCallLegID(rawValue: id), .failed(status: 500, phrase: "cannot create call")))
            return
        }
        legs[id] = LegState(handle: handle, outgoing: true, credentials: invite.credentials, invite: invite, attempt: attempt)
        if let timeout = invite.responseTimeout {
            after(timeout) { $0.inviteTimedOut(id, attempt: attempt) }
        }
        let requestURI = invite.requestURIs[attempt]
        let tags = SofiaTagList()
            .add(tl_nutag_url(), string: requestURI)
            .add(tl_siptag_content_type_str(), string: "application/sdp")
            .add(tl_siptag_payload_str(), string: invite.sdp)
        let overTLS = requestURI.lowercased().hasPrefix("sips:") || requestURI.lowercased().contains(";transport=tls")
        if overTLS, let contact = tlsContact { tags.add(tl_siptag_contact_str(), string: contact) }
        for header in invite.headers { tags.add(tl_siptag_header_str(), string: header) }
        tags.withTags { tl_nua_invite(handle, $0) }
    }

    /// A response to our INVITE: a challenge answered once, progress and answer reported, failures remembered
    /// for the `terminated` event that follows.
    private func inviteResponse(leg: UInt64, status: Int, phrase: String, sip: UnsafePointer<sip_t>?) {
        guard var state = legs[leg] else { return }
        state.heardAnything = true
        legs[leg]?.heardAnything = true
        let sdp = sip.flatMap { Self.body(of: $0.pointee) }
        switch status {
        case 401, 407:
            var realm = [CChar](repeating: 0, count: 256)
            if let credentials = state.credentials, !state.answeredChallenge, let sip, tl_challenge_realm(sip, &realm, realm.count) == 0 {
                state.answeredChallenge = true
                legs[leg] = state
                let auth = "Digest:\(String(cString: realm)):\(credentials.username):\(credentials.password)"
                SofiaTagList().add(tl_nutag_auth(), string: auth).withTags { tl_nua_authenticate(state.handle, $0) }
                return
            }
            legs[leg]?.cause = state.cause ?? .declined(status: status, phrase: phrase)
        case 101..<200:
            legs[leg]?.heardFromCallee = true
            eventHandler(.progress(SIPCallLegID(rawValue: leg), status: status, sdp: sdp))
        case 200..<300:
            legs[leg]?.heardFromCallee = true
            eventHandler(.answered(SIPCallLegID(rawValue: leg), sdp: sdp))
        case 300...:
            legs[leg]?.cause = state.cause ?? .declined(status: status, phrase: phrase)
        default:
            break
        }
    }

    func doBye(_ leg: SIPCallLegID, reason: String?) {
        guard let state = legs[leg.rawValue] else { return }
        if state.outgoing, !state.established {
            legs[leg.rawValue]?.cause = .cancelledByUs
            SofiaTagList().withTags { tl_nua_cancel(state.handle, $0) }
            return
        }
        if !state.established {
            // Not answered yet (or no ACK): a final error response ends it.
            doRespond(leg, status: 480, phrase: "Temporarily Unavailable", sdp: nil)
            return
        }
        legs[leg.rawValue]?.cause = .localBye
        let tags = SofiaTagList()
        if let reason { tags.add(tl_siptag_reason_str(), string: "SIP;cause=200;text=\"\(reason.replacingOccurrences(of: "\"", with: "'"))\"") }
        tags.withTags { tl_nua_bye(state.handle, $0) }
    }

    func doOptions(_ id: UInt64, uri: String, timeout: Duration?, continuation: CheckedContinuation<Int, Never>) {
        let handle = SofiaTagList()
            .add(tl_siptag_to_str(), string: "<\(uri)>")
            .withTags { tl_nua_handle(nua, UnsafeMutableRawPointer(bitPattern: UInt(id)), $0) }
        guard let handle, !shuttingDown else {
            if let handle { nua_handle_destroy(handle) }
            return continuation.resume(returning: 503)
        }
        probes[id] = (handle, continuation)
        SofiaTagList().add(tl_nutag_url(), string: uri).withTags { tl_nua_options(handle, $0) }
        if let timeout {
            after(timeout) { stack in
                guard let probe = stack.probes.removeValue(forKey: id) else { return }
                nua_handle_bind(probe.handle, nil)
                nua_handle_destroy(probe.handle)
                probe.continuation.resume(returning: 408)
            }
        }
    }

    func doDiscard(_ leg: SIPCallLegID) {
        guard let state = legs.removeValue(forKey: leg.rawValue) else { return }
        nua_handle_bind(state.handle, nil)
        after(Self.timerB) { _ in nua_handle_destroy(state.handle) }
    }

    /// RFC 3261 Timer B (64 × T1): how long a client keeps retransmitting an unanswered INVITE.
    static let timerB: Duration = .seconds(32)

    func doInfo(_ leg: SIPCallLegID, contentType: String, body: String) {
        guard let state = legs[leg.rawValue], state.established else { return }
        SofiaTagList()
            .add(tl_siptag_content_type_str(), string: contentType)
            .add(tl_siptag_payload_str(), string: body)
            .withTags { tl_nua_info(state.handle, $0) }
    }

    func doRefer(_ leg: SIPCallLegID, referTo: String) {
        guard let state = legs[leg.rawValue], state.established else {
            eventHandler(.refer(leg, .answered(status: 481, phrase: "Call Does Not Exist")))
            return
        }
        SofiaTagList().add(tl_siptag_refer_to_str(), string: referTo).withTags { tl_nua_refer(state.handle, $0) }
    }

    func doShutdown() {
        for (_, probe) in probes {
            nua_handle_bind(probe.handle, nil)
            nua_handle_destroy(probe.handle)
            probe.continuation.resume(returning: 503)
        }
        probes = [:]
        shuttingDown = true
        unregisterAll()
        nua_shutdown(nua)
    }

    // MARK: - Reading sofia structures

    /// sofia's size cap on one message (NTATAG_MAXSIZE).
    static let maximumMessageSize = 32768

    static func string(_ pointer: UnsafePointer<CChar>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    private static func body(of message: sip_t) -> String? {
        message.sip_payload.flatMap { payload in
            guard let data = payload.pointee.pl_data else { return nil }
            // Not NUL-terminated: use its length.
            return String(decoding: UnsafeRawBufferPointer(start: data, count: Int(payload.pointee.pl_len)), as: UTF8.self)
        }
    }

    private static func nameAddress(_ header: UnsafeMutablePointer<sip_addr_t>?) -> SIPNameAddress {
        guard let header else { return SIPNameAddress(text: "", user: nil, host: nil) }
        let text: String
        if let c = tl_header_string(UnsafeRawPointer(header).assumingMemoryBound(to: msg_header_t.self)) {
            text = String(cString: c)
            free(c)
        } else {
            text = ""
        }
        return SIPNameAddress(text: text, user: string(header.pointee.a_url.url_user), host: string(header.pointee.a_url.url_host))
    }

    /// `Authorization` header values, each serialised back to text (for the gateway's digest check).
    private static func authorization(_ first: UnsafeMutablePointer<sip_authorization_t>?) -> [String] {
        var result: [String] = []
        var next = first
        while let header = next, result.count < 4 {
            if let c = tl_header_string(UnsafeRawPointer(header).assumingMemoryBound(to: msg_header_t.self)) {
                result.append(String(cString: c))
                free(c)
            }
            next = header.pointee.au_next
        }
        return result
    }

    private static func acceptedTypes(_ first: UnsafeMutablePointer<sip_accept_t>?) -> [String]? {
        guard first != nil else { return nil }
        var types: [String] = []
        var next = first
        while let header = next, types.count < 32 {
            if let type = string(header.pointee.ac_type) { types.append(type.lowercased()) }
            next = header.pointee.ac_next
        }
        return types
    }

    /// At most this many extension headers are kept, each cut to this size: context, not a copy of the message.
    static let maximumExtensionHeaders = 32
    static let maximumExtensionHeaderLength = 1024

    /// Values of the unknown headers with one of `names` (lower-case), at most `limit`, each dropped (not cut)
    /// when longer than `maximumLength`.
    private static func unknownHeaderValues(
        _ first: UnsafeMutablePointer<sip_unknown_t>?, named names: Set<String>, limit: Int, maximumLength: Int
    ) -> [String] {
        var result: [String] = []
        var next = first
        while let header = next, result.count < limit {
            if let name = string(header.pointee.un_name), names.contains(name.lowercased()),
               let value = string(header.pointee.un_value), value.utf8.count <= maximumLength {
                result.append(value)
            }
            next = header.pointee.un_next
        }
        return result
    }

    private static func extensionHeaders(_ first: UnsafeMutablePointer<sip_unknown_t>?) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        var next = first
        while let header = next, result.count < maximumExtensionHeaders {
            if let name = string(header.pointee.un_name) {
                result.append((name, String((string(header.pointee.un_value) ?? "").prefix(maximumExtensionHeaderLength))))
            }
            next = header.pointee.un_next
        }
        return result
    }
}

/// A posted command; retained across the C boundary until it runs.
private final class CommandBox {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Sends sofia's own log lines to swift-log.
enum SofiaLog {
    nonisolated(unsafe) private static var logger: Logger?

    static func install(logger: Logger) {
        // Called before the sofia thread starts; only the sofia thread reads it afterwards.
        Self.logger = logger
        tl_log_redirect({ level, line in
            guard let line else { return }
            let text = String(cString: line).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { return }
            SofiaLog.logger?.debug("sofia: \(text)", metadata: ["level": "\(level)"])
        }, 1)
    }
}
