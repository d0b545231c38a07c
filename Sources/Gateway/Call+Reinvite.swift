import Media
import SIP

/// A re-INVITE on an established call (RFC 3261 §14, RFC 3264 §8): hold and resume, a new address or port, another
/// codec from the call's allowed set, new SRTP keys. The offer is negotiated like the first one, the RTP session
/// is pointed at the result on this loop, and the answer goes back in a 200. An offer that cannot be used is
/// answered 488 and the call goes on exactly as before: a re-INVITE never drops a call.
extension Call {
    func reinvite(sdp: String?) {
        eventLoop.assertInEventLoop()
        guard phase == .active || phase == .playingFallback, let rtp, let current = negotiated, let codec else {
            // Still setting up, or ending: there is no settled session to change.
            services.sip.respond(leg, status: 491, phrase: "Request Pending")
            return
        }
        guard let sdp, !sdp.isEmpty else {
            // No offer (a session refresh): ours is the offer, and the call stays as it is.
            return sendDescription(current, rtp: rtp)
        }
        switch renegotiate(sdp, current: current) {
        case .failure(let refusal):
            logger.warning("re-INVITE refused; the call goes on unchanged", metadata: ["reason": "\(refusal.reason)"])
            services.sip.respond(leg, status: 488, phrase: "Not Acceptable Here")
        case .success(let plan):
            do {
                if plan.srtp != srtp, let keys = plan.srtp { try rtp.useSRTP(keys) }
                try applyMedia(plan.negotiated, codec: plan.codec, to: rtp)
            } catch {
                logger.error("re-INVITE media change failed; keeping the old media", metadata: ["error": "\(error)"])
                try? applyMedia(current, codec: codec, to: rtp)
                services.sip.respond(leg, status: 488, phrase: "Not Acceptable Here")
                return
            }
            logger.info("re-INVITE", metadata: [
                "codec": "\(plan.codec.name)", "direction": "\(plan.negotiated.direction.rawValue)",
                "remote": "\(plan.negotiated.remoteAddress):\(plan.negotiated.remotePort)",
            ])
            if plan.codec != self.codec { record.codec = plan.codec.name }
            if plan.negotiated.sendsMedia != current.sendsMedia { agent?.hold(!plan.negotiated.sendsMedia) }
            negotiated = plan.negotiated
            self.codec = plan.codec
            srtp = plan.srtp
            sendDescription(plan.negotiated, rtp: rtp)
        }
    }

    /// The offer against the call's allowed set. SRTP keys are kept when the peer keeps its own (its a=crypto
    /// unchanged), so a hold does not re-key the stream; a new key from the peer gets a new key from us.
    private func renegotiate(_ sdp: String, current: NegotiatedAudio) -> Result<CallMedia, CallMediaRefusal> {
        let offer: SessionDescription
        do {
            offer = try SessionDescription(parsing: sdp)
        } catch {
            return .failure(CallMediaRefusal(reason: "malformed SDP: \(error)"))
        }
        var agreed: NegotiatedAudio
        switch renegotiation.negotiate(offer: offer) {
        case .notAcceptable(let why): return .failure(CallMediaRefusal(reason: why))
        case .agreed(let result): agreed = result
        }
        if !dtmf.answersTelephoneEvent { agreed.telephoneEventPayloadType = nil }
        guard (agreed.srtp == nil) == (current.srtp == nil) else {
            return .failure(CallMediaRefusal(reason: "re-INVITE switches SRTP \(agreed.srtp == nil ? "off" : "on") mid-call"))
        }
        if let offered = agreed.srtp, let kept = current.srtp, offered.suite == kept.suite,
           offered.remoteKeyParameters == kept.remoteKeyParameters,
           let codec = AudioCodec(sdpName: agreed.encoding, payloadType: agreed.payloadType, formatParameters: agreed.remoteFormatParameters) {
            agreed.srtp?.localKeyParameters = kept.localKeyParameters
            return .success(CallMedia(negotiated: agreed, codec: codec, srtp: srtp))
        }
        return CallMedia.make(agreed)
    }

    /// 200 OK with our description of `negotiated`, a new `o=` version (RFC 3264 §8).
    private func sendDescription(_ negotiated: NegotiatedAudio, rtp: RTPSession) {
        sdpVersion += 1
        let answer = negotiated.answer(
            localAddress: services.configuration.media.address, localPort: rtp.localPort, sessionID: String(sdpSessionID),
            version: String(sdpVersion))
        services.sip.respond(leg, status: 200, phrase: "OK", sdp: answer.text)
    }
}
