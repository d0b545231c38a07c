import SIP
import Testing

/// The SDP that re-INVITEs, RTCP and comfort noise depend on: hold directions, RFC 2543 hold, `a=rtcp`,
/// `a=rtcp-mux` and `CN/8000`.
@Suite("SDP: hold, RTCP and comfort noise")
struct SessionChangeSDPTests {
    static func offer(_ media: String, address: String = "10.0.0.1") throws -> NegotiatedAudio {
        let sdp = try SessionDescription(parsing: "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 \(address)\nt=0 0\n\(media)")
        let outcome = AudioOfferAnswer().negotiate(offer: sdp)
        guard case .agreed(let audio) = outcome else { throw NoAgreement(outcome: outcome) }
        return audio
    }

    @Test func holdDirectionsDecideWhoSends() throws {
        let cases: [(String, MediaDescription.Direction, sends: Bool, receives: Bool)] = [
            ("sendrecv", .sendrecv, true, true), ("sendonly", .recvonly, false, true),
            ("recvonly", .sendonly, true, false), ("inactive", .inactive, false, false),
        ]
        for (attribute, answer, sends, receives) in cases {
            let audio = try Self.offer("m=audio 4000 RTP/AVP 0\na=\(attribute)\n")
            #expect(audio.direction == answer)
            #expect(audio.sendsMedia == sends && audio.receivesMedia == receives, "\(attribute)")
            let text = audio.answer(localAddress: "127.0.0.1", localPort: 20000, sessionID: "7", version: "8").text
            #expect(text.contains("a=\(answer.rawValue)\r\n") && text.contains("o=trunkline 7 8 IN IP4"))
        }
        // RFC 2543 hold: c=0.0.0.0 means send nothing there, whatever the direction says.
        let oldHold = try Self.offer("m=audio 4000 RTP/AVP 0\n", address: "0.0.0.0")
        #expect(!oldHold.sendsMedia && oldHold.receivesMedia)
    }

    @Test func rtcpAttributesAreReadAndMuxIsAnswered() throws {
        let named = try Self.offer("m=audio 4000 RTP/AVP 0\na=rtcp:4011 IN IP4 10.0.0.9\n")
        #expect(named.remoteRTCPPort == 4011 && named.remoteRTCPAddress == "10.0.0.9" && !named.rtcpMultiplexed)
        let portOnly = try Self.offer("m=audio 4000 RTP/AVP 0\na=rtcp:4005\n")
        #expect(portOnly.remoteRTCPPort == 4005 && portOnly.remoteRTCPAddress == nil)
        let unreadable = try Self.offer("m=audio 4000 RTP/AVP 0\na=rtcp:nope\n")
        #expect(unreadable.remoteRTCPPort == nil)
        let muxed = try Self.offer("m=audio 4000 RTP/AVP 0\na=rtcp-mux\n")
        #expect(muxed.rtcpMultiplexed)
        #expect(muxed.answer(localAddress: "127.0.0.1", localPort: 20000, sessionID: "1").text.contains("a=rtcp-mux\r\n"))
        let plain = try Self.offer("m=audio 4000 RTP/AVP 0\n")
        #expect(!plain.answer(localAddress: "127.0.0.1", localPort: 20000, sessionID: "1").text.contains("rtcp-mux"))
    }

    @Test func comfortNoiseIsAcceptedAtTheCodecsClockOnly() throws {
        let g711 = try Self.offer("m=audio 4000 RTP/AVP 8 101 13\na=rtpmap:101 telephone-event/8000\na=rtpmap:13 CN/8000\n")
        #expect(g711.comfortNoisePayloadType == 13)
        let answer = try SessionDescription(parsing: g711.answer(localAddress: "127.0.0.1", localPort: 20000, sessionID: "1").text)
        #expect(answer.audio?.formats == [8, 101, 13])
        #expect(answer.audio?.rtpMaps[13] == .init(encoding: "CN", clockRate: 8000))
        // PT 13 is CN/8000 by RFC 3551 without an rtpmap.
        #expect(try Self.offer("m=audio 4000 RTP/AVP 0 13\n").comfortNoisePayloadType == 13)
        let without = try Self.offer("m=audio 4000 RTP/AVP 0\n")
        #expect(without.comfortNoisePayloadType == nil)
        let wideCN = try Self.offer("m=audio 4000 RTP/AVP 0 105\na=rtpmap:105 CN/16000\n")
        #expect(wideCN.comfortNoisePayloadType == nil)
    }
}

struct NoAgreement: Error {
    var outcome: AudioOfferAnswer.Outcome
}
