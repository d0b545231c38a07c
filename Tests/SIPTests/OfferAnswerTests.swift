import SIP
import Testing

@Suite("SDP parsing and offer/answer")
struct OfferAnswerTests {
    static let twilioOffer = """
        v=0\r
        o=root 1234 1234 IN IP4 54.172.60.1\r
        s=Twilio Media Gateway\r
        c=IN IP4 168.86.128.10\r
        t=0 0\r
        m=audio 12000 RTP/AVP 0 8 101\r
        a=rtpmap:0 PCMU/8000\r
        a=rtpmap:8 PCMA/8000\r
        a=rtpmap:101 telephone-event/8000\r
        a=fmtp:101 0-16\r
        a=ptime:20\r
        a=sendrecv\r

        """

    @Test func parsesACarrierOffer() throws {
        let sdp = try SessionDescription(parsing: Self.twilioOffer)
        #expect(sdp.connectionAddress == "168.86.128.10")
        let audio = try #require(sdp.audio)
        #expect(audio.port == 12000)
        #expect(audio.formats == [0, 8, 101])
        #expect(audio.rtpMap(for: 101) == .init(encoding: "telephone-event", clockRate: 8000))
        #expect(audio.fmtp[101] == "0-16")
        #expect(audio.packetTime == 20)
    }

    @Test func offererOrderWinsAndTelephoneEventIsKept() throws {
        let outcome = AudioOfferAnswer().negotiate(offer: try SessionDescription(parsing: Self.twilioOffer))
        guard case .agreed(let audio) = outcome else { Issue.record("expected agreement, got \(outcome)"); return }
        #expect(audio.encoding == "PCMU")
        #expect(audio.payloadType == 0)
        #expect(audio.telephoneEventPayloadType == 101)
        #expect(audio.remoteAddress == "168.86.128.10")
        #expect(audio.remotePort == 12000)
    }

    @Test func staticPayloadTypesNeedNoRtpmap() throws {
        let offer = try SessionDescription(parsing: "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 18 8\n")
        guard case .agreed(let audio) = AudioOfferAnswer().negotiate(offer: offer) else { Issue.record("no agreement"); return }
        #expect(audio.encoding == "PCMA")
        #expect(audio.telephoneEventPayloadType == nil)
    }

    @Test func noCommonCodecIsNotAcceptable() throws {
        let offer = try SessionDescription(parsing: "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 18 9\n")
        guard case .notAcceptable(let reason) = AudioOfferAnswer().negotiate(offer: offer) else {
            Issue.record("G.729/G.722-only offer must be refused"); return
        }
        #expect(reason.contains("no common codec"))
    }

    @Test func unknownTransportsAndDisabledStreamsAreNotAcceptable() throws {
        let dtls = try SessionDescription(parsing: "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 UDP/TLS/RTP/SAVPF 0\n")
        #expect(AudioOfferAnswer().negotiate(offer: dtls) == .notAcceptable("unsupported transport UDP/TLS/RTP/SAVPF"))
        let disabled = try SessionDescription(parsing: "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 0 RTP/AVP 0\n")
        #expect(AudioOfferAnswer().negotiate(offer: disabled) == .notAcceptable("offer disabled the audio stream"))
    }

    @Test func answerMirrorsTheChoiceAndDirection() throws {
        let offer = try SessionDescription(parsing: Self.twilioOffer.replacingOccurrences(of: "a=sendrecv", with: "a=sendonly"))
        guard case .agreed(let audio) = AudioOfferAnswer().negotiate(offer: offer) else { Issue.record("no agreement"); return }
        let answer = audio.answer(localAddress: "192.0.2.5", localPort: 20002, sessionID: "42")
        let text = answer.text
        #expect(text.contains("m=audio 20002 RTP/AVP 0 101\r\n"))
        #expect(text.contains("c=IN IP4 192.0.2.5\r\n"))
        #expect(text.contains("a=rtpmap:101 telephone-event/8000\r\n"))
        #expect(text.contains("a=recvonly\r\n"))
        // What we write, we can read back.
        let reparsed = try SessionDescription(parsing: text)
        #expect(reparsed.audio?.formats == [0, 101])
    }

    @Test(arguments: [
        ("", "missing v=0"),
        ("v=1\no=- 1 1 IN IP4 1.2.3.4\n", "unsupported version"),
        ("v=0\nm=audio 4000 RTP/AVP 0\n", "missing o="),
        ("v=0\no=- 1 1 IN IP4 1.2.3.4\nm=audio 99999 RTP/AVP 0\n", "bad media port"),
        ("v=0\no=- 1 1 IN IP4 1.2.3.4\nm=audio 4000 RTP/AVP 300\n", "bad RTP payload type"),
        ("v=0\no=- 1 1 IN IP4 1.2.3.4\nc=IN FOO bar\n", "c= must be"),
        ("v=0\no=- 1 1 IN IP4 1.2.3.4\ngarbage\n", "expected '<type>=<value>'"),
        ("v=0\no=- 1 1 IN IP4 1.2.3.4\nm=audio 4000 RTP/AVP 96\na=rtpmap:96 opus\n", "bad a=rtpmap"),
    ])
    func malformedSDPIsRejectedWithTheLine(text: String, expected: String) {
        #expect {
            try SessionDescription(parsing: text)
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test func oversizedSDPIsRejected() {
        let huge = "v=0\no=- 1 1 IN IP4 1.2.3.4\n" + String(repeating: "a=x\n", count: 5000)
        #expect(throws: SDPParseError.self) { try SessionDescription(parsing: huge) }
    }
}

@Suite("Our offer, their answer")
struct AudioOfferTests {
    func answer(_ media: String) throws -> SessionDescription {
        try SessionDescription(parsing: "v=0\r\no=callee 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\(media)")
    }

    @Test func theOfferListsG711AndTelephoneEvent() throws {
        let text = AudioOffer().offer(localAddress: "192.0.2.1", localPort: 20002, sessionID: "7").text
        #expect(text.contains("m=audio 20002 RTP/AVP 0 8 101"))
        #expect(text.contains("a=rtpmap:101 telephone-event/8000"))
        #expect(text.contains("c=IN IP4 192.0.2.1"))
    }

    @Test func theAnswersFirstOfferedCodecIsUsed() throws {
        let outcome = AudioOffer().negotiate(answer: try answer("m=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"))
        guard case .agreed(let agreed) = outcome else { Issue.record("\(outcome)"); return }
        #expect(agreed.encoding == "PCMA")
        #expect(agreed.remotePort == 4000)
        #expect(agreed.remoteAddress == "192.0.2.9")
        #expect(agreed.telephoneEventPayloadType == 101)
    }

    @Test(arguments: [
        ("m=audio 0 RTP/AVP 0\r\n", "rejected the audio stream"),
        ("m=audio 4000 RTP/AVP 18\r\n", "no codec we offered"),
        ("m=audio 4000 RTP/SAVP 0\r\n", "we offered RTP/AVP"),
    ])
    func unusableAnswersSayWhy(media: String, reason: String) throws {
        guard case .notAcceptable(let why) = AudioOffer().negotiate(answer: try answer(media)) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(why.contains(reason), "\(why)")
    }
}
