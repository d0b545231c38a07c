import Media
import NIOCore

extension Call {
    /// Time SIP INFO gives each key: the tone's duration plus the gap, as in-band and RFC 4733 sending use.
    static let infoKeySpacing = TimeAmount.milliseconds(Int64(InbandDTMFGenerator.toneMilliseconds + InbandDTMFGenerator.gapMilliseconds))

    /// Sends the agent's DTMF the way the route's `dtmf` mode and the negotiation say: RFC 4733 events, in-band
    /// tones in the playout path, or one SIP INFO (`application/dtmf-relay`) per key, paced like tones.
    func sendDigits(_ digits: String, over rtp: RTPSession, telephoneEvent: Bool) throws {
        let transport = dtmf.sendTransport(telephoneEvent: telephoneEvent)
        switch transport {
        case .rfc4733:
            try rtp.sendDigits(digits)
        case .inband:
            InbandDTMFGenerator.render(try DTMFSequence(digits)).withUnsafeBufferPointer { rtp.enqueue($0) }
        case .info:
            sendInfo(try DTMFSequence(digits))
        }
        logger.info("sending DTMF to the caller", metadata: ["count": "\(digits.count)", "transport": "\(transport.rawValue)"])
    }

    /// Schedules one INFO per key after any still queued, `infoKeySpacing` apart; a pause waits 500 ms.
    private func sendInfo(_ sequence: DTMFSequence) {
        var at = max(infoQueueEnd, .now())
        for step in sequence.steps {
            switch step {
            case .pause:
                at = at + .milliseconds(Int64(DTMFSequence.pauseMilliseconds))
            case .key(let code):
                let body = "Signal=\(DTMFSequence.character(forEvent: code))\r\nDuration=\(InbandDTMFGenerator.toneMilliseconds)\r\n"
                eventLoop.scheduleTask(deadline: at) { [self] in
                    guard phase == .active else { return }
                    services.sip.sendInfo(leg, contentType: "application/dtmf-relay", body: body)
                }
                at = at + Self.infoKeySpacing
            }
        }
        infoQueueEnd = at
    }
}
