import Agent
import Foundation
import Logging
import Media
import NIOCore
import SecureCapture
import SIP

/// One call, inbound or placed by us: its RTP stream, its agent and its record.
///
/// Thread contract: every method runs on `eventLoop`, the one loop this call lives on; its RTP socket and agent
/// socket are on the same loop, so a packet crosses no thread. The gateway reaches it only via `eventLoop.execute`.
final class Call {
    enum Phase {
        /// INVITE accepted (or about to be sent, for a call we place), opening the RTP socket.
        case settingUp
        /// Our INVITE is out; waiting for the callee (media may already flow as early media).
        case dialling
        /// 200 OK sent, waiting for the ACK.
        case answering
        /// Media flows to and from the agent.
        case active
        /// The gateway's closing prompt is playing (the fallback after an agent failure, or an opt-out
        /// confirmation), then BYE.
        case playingFallback
        /// BYE sent or received; waiting for sofia to finish the dialog.
        case ending
        case ended
    }

    let leg: SIPCallLegID
    let eventLoop: EventLoop
    /// Immutable copy of the record's sid, readable from any thread (for lookups).
    let callSid: String
    let services: GatewayServices
    /// Known from the INVITE for an inbound call; from the callee's answer (or early media) for one we place.
    var negotiated: NegotiatedAudio?
    /// The offer we sent, for a call we place: its answer is read against it.
    var offer: AudioOffer?
    private let context: CallContext
    private let makeAgent: (EventLoop) -> CallAgent
    let logger: Logger
    var record: CallRecord
    var phase = Phase.settingUp
    var rtp: RTPSession?
    /// Set by `startAgent`; let go when the agent failed or was stopped.
    var agent: CallAgent?
    /// From the SDP agreement: known at creation for an inbound call, at the answer (or early media) for one we place.
    var codec: AudioCodec?
    var srtp: SRTPConfiguration?
    /// The rate of the PCM exchanged with the agent (8 kHz, or wideband for `audio/l16` agents).
    let agentSampleRate: Int
    let symmetricRTP: Bool
    private let ringMilliseconds: Int
    /// Inbound: rings before answering. Outbound: gives up on a callee who does not answer.
    var ringTimer: Scheduled<Void>?
    private var digits = DigitMerger()
    /// PCI mode: see Call+SecureCapture.swift.
    var secureCapture: CallSecureCapture
    /// How DTMF travels on this call (route over trunk); see Call+SendDigits.swift.
    let dtmf: DTMFMode
    /// When the last SIP INFO key already scheduled goes out.
    var infoQueueEnd = NIODeadline.uptimeNanoseconds(0)
    /// What a re-INVITE's offer is negotiated against (the trunk's codecs and SRTP policy); see Call+Reinvite.swift.
    var renegotiation = AudioOfferAnswer()
    /// Our SDP's `o=` session id, and the version of the last description we sent (raised by each new one).
    let sdpSessionID = UInt64(UInt32.random(in: 1...UInt32.max))
    var sdpVersion: UInt64 = 0
    /// Silence and session limits, playout cap, turn latency: see Call+AgentWatch.swift.
    var agentWatch: AgentWatch
    /// Transfer to a human: see Call+Transfer.swift.
    var transfer: CallTransfer?
    /// Set on the leg a transfer placed to its target: the call it serves (same loop).
    weak var transferParent: Call?
    /// The route's `fallback.transfer_to`: where the call goes when the agent fails, after the prompt.
    var fallbackTransferTarget: String?
    /// Campaign calls: disclosure before the agent, opt-out; see Call+Campaign.swift.
    var campaign: CallCampaign?

    /// Mark id the gateway uses for its own fallback prompt; agents use ids ≥ 0.
    private static let fallbackMark = -1

    init(
        leg: SIPCallLegID, eventLoop: EventLoop, services: GatewayServices, media: CallMedia?, agentSampleRate: Int = 8000,
        symmetricRTP: Bool, ringMilliseconds: Int, context: CallContext, record: CallRecord,
        secureCapture: CallSecureCapture, dtmf: DTMFMode, agentSettings: AgentRouteSettings = AgentRouteSettings(),
        makeAgent: @escaping (EventLoop) -> CallAgent
    ) {
        self.secureCapture = secureCapture
        self.agentWatch = AgentWatch(settings: agentSettings)
        self.dtmf = dtmf
        // `info` and `inband` answer without telephone-event, so the caller's phone uses the chosen transport.
        var negotiated = media?.negotiated
        if !dtmf.answersTelephoneEvent { negotiated?.telephoneEventPayloadType = nil }
        self.symmetricRTP = symmetricRTP
        self.ringMilliseconds = ringMilliseconds
        self.leg = leg
        self.eventLoop = eventLoop
        self.services = services
        self.negotiated = negotiated
        self.codec = media?.codec
        self.srtp = media?.srtp
        self.agentSampleRate = agentSampleRate
        self.context = context
        self.record = record
        self.callSid = record.callSid
        self.makeAgent = makeAgent
        var logger = services.logger
        logger[metadataKey: "call"] = "\(context.callSid)"
        self.logger = logger
    }

    // MARK: - Signalling events

    /// Opens the RTP socket and answers the INVITE with our SDP (after ringing, if the route rings).
    func setUp() {
        eventLoop.assertInEventLoop()
        if ringMilliseconds > 0 { services.sip.respond(leg, status: 180, phrase: "Ringing") }
        RTPSession.open(host: services.configuration.media.address, portPool: services.portPool, eventLoop: eventLoop, logger: logger)
            .whenComplete { [self] result in
                switch result {
                case .success(let session):
                    guard phase == .settingUp else {
                        // CANCEL won the race with the socket: nothing to answer any more.
                        _ = session.close()
                        return
                    }
                    rtp = session
                    session.delegate = self
                    if ringMilliseconds > 0 {
                        ringTimer = eventLoop.scheduleTask(in: .milliseconds(Int64(ringMilliseconds))) { [self] in answer() }
                    } else {
                        answer()
                    }
                case .failure(let error):
                    logger.error("no RTP port for the call", metadata: ["error": "\(error)"])
                    guard phase == .settingUp else { return }
                    record.hangupBy = "gateway"
                    record.hangupReason = "no RTP port available: \(error)"
                    phase = .ending
                    record.sipStatus = 503
                    services.sip.respond(leg, status: 503, phrase: "Service Unavailable")
                }
            }
    }

    private func answer() {
        guard phase == .settingUp, let rtp, let negotiated else { return }
        phase = .answering
        sdpVersion = sdpSessionID
        let answer = negotiated.answer(
            localAddress: services.configuration.media.address, localPort: rtp.localPort, sessionID: String(sdpSessionID))
        record.sipStatus = 200
        services.sip.respond(leg, status: 200, phrase: "OK", sdp: answer.text)
    }

    /// The ACK arrived: start media and the agent.
    func established() {
        eventLoop.assertInEventLoop()
        guard phase == .answering, let rtp, let negotiated, startMedia(rtp, negotiated) else { return }
        startAgent()
    }

    /// Sends and receives RTP as negotiated; false (and the call is being hung up) when the media cannot start.
    @discardableResult
    func startMedia(_ rtp: RTPSession, _ negotiated: NegotiatedAudio) -> Bool {
        guard let codec else { return false }
        do {
            if let srtp { try rtp.useSRTP(srtp) }
            rtp.limitPlayout(maxSamples: agentWatch.settings.maxBufferSeconds * agentSampleRate)
            try applyMedia(negotiated, codec: codec, to: rtp)
        } catch {
            phase = .active
            hangUp(by: "gateway", reason: "media setup failed: \(error)")
            return false
        }
        record.codec = codec.name
        record.srtp = srtp?.suite.rawValue
        return true
    }

    /// Points the RTP session at an agreement (the first one, or a re-INVITE's): address, codec, comfort noise,
    /// RTCP, and which ways media flows (hold).
    func applyMedia(_ negotiated: NegotiatedAudio, codec: AudioCodec, to rtp: RTPSession) throws(MediaError) {
        let media = services.configuration.media
        let remote = try? SocketAddress(ipAddress: negotiated.remoteAddress, port: negotiated.remotePort)
        let rtcpRemote = negotiated.remoteRTCPPort.flatMap { port in
            try? SocketAddress(ipAddress: negotiated.remoteRTCPAddress ?? negotiated.remoteAddress, port: port)
        }
        let rtcp = RTCPOptions(
            remote: rtcpRemote, multiplexed: negotiated.rtcpMultiplexed,
            interval: media.rtcpIntervalMilliseconds > 0 ? .milliseconds(Int64(media.rtcpIntervalMilliseconds)) : nil)
        try rtp.start(
            remote: remote, codec: codec, telephoneEventPayloadType: negotiated.telephoneEventPayloadType,
            symmetric: symmetricRTP,
            inactivityTimeout: media.inactivityTimeoutSeconds > 0 ? .seconds(Int64(media.inactivityTimeoutSeconds)) : nil,
            jitterBufferMilliseconds: media.jitterMilliseconds, agentSampleRate: agentSampleRate,
            comfortNoisePayloadType: negotiated.comfortNoisePayloadType, rtcp: rtcp)
        rtp.setDirection(sending: negotiated.sendsMedia, receiving: negotiated.receivesMedia)
    }

    /// The call is answered: the agent takes over (on a campaign call, once the disclosure has played).
    func startAgent() {
        phase = .active
        record.answerTime = Date()
        guard campaign == nil else { return campaignEvent { $0.answered() } }
        connectAgent()
    }

    func connectAgent() {
        let agent = makeAgent(eventLoop)
        self.agent = agent
        logger.info("call answered", metadata: [
            "codec": "\(record.codec ?? "-")", "rtp_port": "\(rtp?.localPort ?? 0)", "agent": "\(record.agent ?? "")",
        ])
        agent.start(context: context, control: self)
        startWatchingAgent()
        startCaptureOnAnswer()
    }

    /// Sofia reports the dialog over: release everything and write the record.
    func terminated(_ termination: SIPTermination) {
        eventLoop.assertInEventLoop()
        guard phase != .ended else { return }
        phase = .ended
        ringTimer?.cancel()
        switch termination {
        case .remoteBye:
            // The far party: whoever we called, on a call we placed.
            let party = record.direction == "inbound" ? "caller" : "callee"
            record.hangupBy = record.hangupBy ?? party
            record.hangupReason = record.hangupReason ?? "\(party) hung up"
        case .localBye:
            // Set when we decided to hang up, unless nua ended the call on shutdown.
            record.hangupBy = record.hangupBy ?? "gateway"
            record.hangupReason = record.hangupReason ?? "gateway shut down"
        case .cancelled:
            record.sipStatus = 487
            record.hangupBy = "caller"
            record.hangupReason = "caller cancelled before answer"
        case .rejected(let status):
            record.sipStatus = status
        case .failed(let status, let phrase):
            record.hangupBy = record.hangupBy ?? "gateway"
            record.hangupReason = record.hangupReason ?? "dialog failed: \(status) \(phrase)"
        case .declined(let status, let phrase):
            record.sipStatus = status
            record.hangupBy = "callee"
            record.hangupReason = "callee answered \(status) \(phrase)"
            record.outcome = CallOutcome(finalStatus: status)
        case .cancelledByUs:
            record.sipStatus = 487
            record.hangupBy = record.hangupBy ?? "gateway"
        }
        endSecureCapture()
        stopWatchingAgent()
        endTransfer()
        transferParent?.transferLegEnded(self)
        if let agent {
            noteConnectAttempts()
            agent.stop(reason: record.hangupReason ?? "call ended")
            self.agent = nil
        }
        let end = Date()
        record.endTime = end
        if let answer = record.answerTime { record.durationSeconds = (end.timeIntervalSince(answer) * 1000).rounded() / 1000 }
        guard let rtp else {
            services.finish(self)
            return
        }
        self.rtp = nil
        // Closing sends the RTCP BYE (with a last report) at once: read the counters after it.
        let closed = rtp.close()
        let stats = rtp.statistics
        record.packetsIn = stats.packetsReceived
        record.packetsOut = stats.packetsSent
        record.bytesIn = stats.bytesReceived
        record.bytesOut = stats.bytesSent
        record.packetsLost = stats.packetsLost
        record.media(stats)
        record.rtcp(stats.rtcp)
        recordAgentWatch(stats)
        closed.whenComplete { [self] _ in services.finish(self) }
    }

    /// A key press from any transport; the same press sent two ways reaches the agent once.
    func receivedDigit(_ digit: Character, from source: DigitMerger.Source) {
        eventLoop.assertInEventLoop()
        guard dtmf.accepts(source) else {
            logger.debug("key ignored: the route's dtmf mode does not take this transport", metadata: ["mode": "\(dtmf.rawValue)"])
            return
        }
        if source == .rfc4733 { secureCapture.silencer?.eventSeen() }
        guard phase == .active || phase == .playingFallback, digits.accept(digit, from: source, at: .now()) else { return }
        // In secure capture the key goes to the capture and nowhere else, not even the record's count.
        guard !captureKey(digit), !campaignKey(digit) else { return }
        record.digitsReceived += 1
        agent?.callerDigit(digit)
    }

    /// Someone outside the call (the admin API) ends it: BYE when answered, a final answer when not.
    func requestHangUp(by party: String, reason: String) {
        eventLoop.assertInEventLoop()
        switch phase {
        case .active, .playingFallback:
            hangUp(by: party, reason: reason)
        case .settingUp, .dialling, .answering:
            phase = .ending
            record.hangupBy = party
            record.hangupReason = reason
            services.sip.hangUp(leg)
        case .ending, .ended:
            break
        }
    }

    /// The gateway (or the agent) ends the call with BYE.
    func hangUp(by party: String, reason: String) {
        guard phase == .active || phase == .playingFallback else { return }
        phase = .ending
        record.hangupBy = party
        record.hangupReason = reason
        logger.info("hanging up", metadata: ["by": "\(party)", "reason": "\(reason)"])
        services.sip.hangUp(leg)
    }

    private func playFallback(because failure: AgentFailure) {
        guard phase == .active, let rtp else { return }
        logger.warning("agent failed, playing fallback prompt", metadata: ["reason": "\(failure.reason)"])
        record.agentFailure = failure.reason
        noteConnectAttempts()
        agent = nil
        phase = .playingFallback
        rtp.clearPlayout()
        services.prompts.fallback.withUnsafeBufferPointer { rtp.enqueue($0, sampleRate: WAVFile.sampleRate) }
        rtp.enqueueMark(Self.fallbackMark)
    }
}

// MARK: - Media events (hot path: direct calls on the call's loop)

extension Call: RTPSessionDelegate {
    func rtpSession(_ session: RTPSession, receivedAudio samples: UnsafeBufferPointer<Int16>) {
        guard routeCallerAudioToHuman(samples) else { return }
        watchCallerAudio(samples)
        forwardCallerAudio(samples)
    }

    func rtpSession(_ session: RTPSession, receivedDigit digit: DTMFDigit) {
        receivedDigit(digit.character, from: .rfc4733)
    }

    func rtpSessionTimedOut(_ session: RTPSession) {
        hangUp(by: "gateway", reason: "no RTP from the caller for \(services.configuration.media.inactivityTimeoutSeconds) s")
    }

    func rtpSession(_ session: RTPSession, playedMark id: Int) {
        if id == Self.fallbackMark {
            guard !transferAfterFallback() else { return }
            hangUp(by: "gateway", reason: record.agentFailure ?? "agent failed")
        } else if id < 0 {
            campaignMarkPlayed(id)
        } else {
            agent?.markPlayed(id)
        }
    }
}

// MARK: - What the agent asks of the call

extension Call: AgentCallControl {
    func agentPlay(_ samples: UnsafeBufferPointer<Int16>) {
        guard phase == .active, let playout = agentPlayout else { return }
        agentSentAudio(count: samples.count, accepted: playout.enqueue(samples))
    }

    func agentMark(_ id: Int) {
        guard phase == .active else { return }
        agentWasActive()
        agentPlayout?.enqueueMark(id)
    }

    func agentClear() {
        guard phase == .active else { return }
        agentWasActive()
        agentPlayout?.clearPlayout()
    }

    func agentHangUp(reason: String) {
        guard !transferContinuesWithoutAgent() else { return }
        hangUp(by: "agent", reason: reason)
    }

    func agentFailed(_ failure: AgentFailure) {
        guard !transferContinuesWithoutAgent() else {
            record.agentFailure = failure.reason
            return
        }
        playFallback(because: failure)
    }

    func agentSendDigits(_ digits: String) throws {
        guard phase == .active, let rtp else { throw MediaError(.closed, "the call is not active") }
        try sendDigits(digits, over: rtp, telephoneEvent: negotiated?.telephoneEventPayloadType != nil)
    }

    func agentStartSecureCapture(_ options: SecureCaptureOptions) throws {
        try startSecureCapture(options)
    }

    func agentStopSecureCapture() throws {
        try stopSecureCapture()
    }

    func agentTransfer(_ command: TransferCommand) throws {
        try agentTransferCommand(command)
    }

    func agentOptOut(reason: String) throws {
        try optOutRequestedByAgent(reason: reason)
    }
}
