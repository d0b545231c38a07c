import Foundation
import Logging
import Media
import NIOCore
import SIP

/// A call we place: INVITE out, ring timeout, early media, then the same media and agent path as an inbound call.
extension Call {
    struct Dial: Sendable {
        /// The INVITE, given our SDP offer (known once the RTP socket is open); throws when it cannot be sent.
        let invite: @Sendable (_ sdp: String) throws -> OutgoingInvite
        let ringTimeout: TimeAmount
        /// Codecs and SRTP keys as the trunk wants them.
        let offer: AudioOffer

        /// Through a trunk, as it wants the INVITE (failover order, caller ID, credentials), plus `extraHeaders`.
        init(invite: OutboundInvite, ringTimeout: TimeAmount, offer: AudioOffer, extraHeaders: [String] = []) {
            self.invite = { sdp in
                var sipInvite = try invite.sipInvite(sdp: sdp)
                sipInvite.headers += extraHeaders
                return sipInvite
            }
            self.ringTimeout = ringTimeout
            self.offer = offer
        }

        /// Straight to a SIP URI (a transfer target), no trunk.
        init(requestURI: String, from: String, callID: String, headers: [String], ringTimeout: TimeAmount, offer: AudioOffer) {
            self.invite = { sdp in
                OutgoingInvite(requestURIs: [requestURI], from: from, to: "<\(requestURI)>", callID: callID, sdp: sdp, headers: headers)
            }
            self.ringTimeout = ringTimeout
            self.offer = offer
        }
    }

    /// Opens the RTP socket (its port goes in our offer), sends the INVITE and starts the ring timer.
    func dial(_ dial: Dial) {
        eventLoop.assertInEventLoop()
        RTPSession.open(host: services.configuration.media.address, portPool: services.portPool, eventLoop: eventLoop, logger: logger)
            .whenComplete { [self] result in
                switch result {
                case .success(let session):
                    guard phase == .settingUp else {
                        // Hung up before anything was sent: there is no SIP leg to end.
                        _ = session.close()
                        return endUnsent(reason: record.hangupReason ?? "hung up before dialling")
                    }
                    rtp = session
                    session.delegate = self
                    phase = .dialling
                    offer = dial.offer
                    let offer = dial.offer.offer(
                        localAddress: services.configuration.media.address, localPort: session.localPort,
                        sessionID: String(sdpSessionID))
                    sdpVersion = sdpSessionID
                    let invite: OutgoingInvite
                    do {
                        invite = try dial.invite(offer.text)
                    } catch {
                        logger.error("call not placed", metadata: ["reason": "\(error)"])
                        rtp = nil
                        return session.close().whenComplete { [self] _ in endUnsent(reason: "cannot sign the call: \(error)") }
                    }
                    services.sip.invite(invite, on: leg)
                    ringTimer = eventLoop.scheduleTask(in: dial.ringTimeout) { [self] in giveUpRinging(after: dial.ringTimeout) }
                case .failure(let error):
                    logger.error("no RTP port for the call", metadata: ["error": "\(error)"])
                    endUnsent(reason: "no RTP port available: \(error)")
                }
            }
    }

    /// 180/183 from the callee; an SDP in it starts early media (ringback, announcements) before the answer.
    func progress(status: Int, sdp: String?) {
        eventLoop.assertInEventLoop()
        guard phase == .dialling else { return }
        logger.debug("call progress", metadata: ["status": "\(status)", "early_media": "\(sdp != nil)"])
        transferParent?.transferLegProgress(self, status: status)
        guard negotiated == nil, let sdp, let rtp else { return }
        switch negotiate(sdp) {
        case .agreed(let agreed):
            startMedia(rtp, agreed)
        case .notAcceptable(let why):
            logger.warning("early media SDP ignored", metadata: ["reason": "\(why)"])
        }
    }

    /// 2xx from the callee: sofia sends the ACK; media and the agent start.
    func answered(sdp: String?) {
        eventLoop.assertInEventLoop()
        guard phase == .dialling, let rtp else { return }
        ringTimer?.cancel()
        record.sipStatus = 200
        record.outcome = .answered
        if negotiated == nil {
            switch sdp.map(negotiate) ?? .notAcceptable("2xx without SDP answer") {
            case .agreed(let agreed):
                guard startMedia(rtp, agreed) else { return }
            case .notAcceptable(let why):
                // Answered but unusable: end it with BYE rather than leave the callee in silence.
                phase = .active
                return hangUpAnswered(reason: "callee's answer unusable: \(why)")
            }
        }
        startAgent()
    }

    /// The callee's SDP answer, taken as the call's media plan (codec states, SRTP keys) when usable.
    private func negotiate(_ sdp: String) -> AudioOfferAnswer.Outcome {
        let outcome: AudioOfferAnswer.Outcome
        do {
            outcome = (offer ?? AudioOffer()).negotiate(answer: try SessionDescription(parsing: sdp))
        } catch {
            return .notAcceptable("malformed SDP: \(error)")
        }
        guard case .agreed(let agreed) = outcome else { return outcome }
        switch CallMedia.make(agreed) {
        case .success(let plan):
            negotiated = plan.negotiated
            codec = plan.codec
            srtp = plan.srtp
            return .agreed(plan.negotiated)
        case .failure(let refusal):
            return .notAcceptable(refusal.reason)
        }
    }

    private func giveUpRinging(after timeout: TimeAmount) {
        guard phase == .dialling else { return }
        phase = .ending
        record.outcome = .noAnswer
        record.hangupBy = "gateway"
        record.hangupReason = "no answer within \(timeout.nanoseconds / 1_000_000_000) s"
        logger.info("no answer, cancelling")
        services.sip.hangUp(leg)
    }

    private func hangUpAnswered(reason: String) {
        phase = .ending
        record.hangupBy = "gateway"
        record.hangupReason = reason
        logger.warning("hanging up", metadata: ["reason": "\(reason)"])
        services.sip.hangUp(leg)
    }

    /// Nothing went out on SIP, so no `terminated` will come: the record is written here.
    private func endUnsent(reason: String) {
        phase = .ended
        record.outcome = record.outcome ?? .failed
        record.hangupBy = record.hangupBy ?? "gateway"
        record.hangupReason = reason
        record.endTime = Date()
        transferParent?.transferLegEnded(self)
        services.finish(self)
    }
}
