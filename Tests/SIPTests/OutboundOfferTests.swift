import SIP
import Testing

@Suite("Our offer with the trunk's codecs and SRTP")
struct OutboundOfferTests {
    static let key80 = SDESCrypto(tag: 1, suite: "AES_CM_128_HMAC_SHA1_80", keyParameters: "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzcyAoc2VuZGluZyk=")
    static let key32 = SDESCrypto(tag: 2, suite: "AES_CM_128_HMAC_SHA1_32", keyParameters: "inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj")

    func answer(_ media: String) throws -> SessionDescription {
        try SessionDescription(parsing: "v=0\r\no=callee 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\(media)")
    }

    @Test func opusFirstWithItsOwnTelephoneEventAndOurFmtp() throws {
        let offer = AudioOffer(encodings: ["opus", "pcmu"], opusParameters: "maxplaybackrate=16000; useinbandfec=1")
        let text = offer.offer(localAddress: "192.0.2.1", localPort: 20002, sessionID: "7").text
        #expect(text.contains("m=audio 20002 RTP/AVP 96 0 101 102"))
        #expect(text.contains("a=rtpmap:96 opus/48000/2"))
        #expect(text.contains("a=fmtp:96 maxplaybackrate=16000; useinbandfec=1"))
        #expect(text.contains("a=rtpmap:102 telephone-event/48000"))
        #expect(!text.contains("a=crypto"))

        let outcome = offer.negotiate(answer: try answer(
            "m=audio 4000 RTP/AVP 96 102\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:102 telephone-event/48000\r\n"))
        guard case .agreed(let agreed) = outcome else { Issue.record("\(outcome)"); return }
        #expect(agreed.encoding == "OPUS" && agreed.clockRate == 48000 && agreed.telephoneEventPayloadType == 102)
        #expect(agreed.remoteFormatParameters == "useinbandfec=1")
        #expect(agreed.srtp == nil)
    }

    @Test func requiredSRTPOffersSAVPAndPairsTheAnswersLineWithOurKey() throws {
        let offer = AudioOffer(encodings: ["pcma"], srtp: .required, keys: [Self.key80, Self.key32])
        let text = offer.offer(localAddress: "192.0.2.1", localPort: 20002, sessionID: "7").text
        #expect(text.contains("m=audio 20002 RTP/SAVP 8 101"))
        #expect(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNf"))
        #expect(text.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:d0Rm"))

        let theirs = "inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xt"
        let outcome = offer.negotiate(answer: try answer("m=audio 4000 RTP/SAVP 8\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 \(theirs)\r\n"))
        guard case .agreed(let agreed) = outcome else { Issue.record("\(outcome)"); return }
        #expect(agreed.srtp?.suite == "AES_CM_128_HMAC_SHA1_32")
        #expect(agreed.srtp?.remoteKeyParameters == theirs)
        #expect(agreed.srtp?.localKeyParameters == Self.key32.keyParameters)
    }

    @Test(arguments: [
        ("m=audio 4000 RTP/AVP 8\r\n", "we offered RTP/SAVP"),
        ("m=audio 4000 RTP/SAVP 8\r\n", "no a=crypto"),
        ("m=audio 4000 RTP/SAVP 8\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk\r\n", "matches none we offered"),
    ])
    func requiredSRTPRefusesAnswersWithoutItsCrypto(media: String, reason: String) throws {
        let offer = AudioOffer(encodings: ["pcma"], srtp: .required, keys: [Self.key80])
        guard case .notAcceptable(let why) = offer.negotiate(answer: try answer(media)) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(why.contains(reason), "\(why)")
    }

    @Test func allowedSRTPOffersCryptoOnAVPAndTakesAPlainAnswer() throws {
        let offer = AudioOffer(encodings: ["pcmu"], srtp: .allowed, keys: [Self.key80])
        let text = offer.offer(localAddress: "192.0.2.1", localPort: 20002, sessionID: "7").text
        #expect(text.contains("m=audio 20002 RTP/AVP 0 101"))
        #expect(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"))
        guard case .agreed(let agreed) = offer.negotiate(answer: try answer("m=audio 4000 RTP/AVP 0\r\n")) else {
            Issue.record("expected agreement")
            return
        }
        #expect(agreed.srtp == nil && agreed.encoding == "PCMU")
    }
}
