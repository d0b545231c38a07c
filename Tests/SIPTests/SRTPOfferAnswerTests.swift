import SIP
import Testing

@Suite("SDES crypto and Opus in offer/answer")
struct SRTPOfferAnswerTests {
    static let key80 = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32"
    static let key32 = "inline:c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkw"

    static func offer(proto: String = "RTP/SAVP", crypto: [String] = [], formats: String = "0 101", extra: String = "") -> String {
        var lines = [
            "v=0", "o=- 1 1 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 4000 \(proto) \(formats)",
            "a=rtpmap:101 telephone-event/8000",
        ]
        lines += crypto.map { "a=crypto:\($0)" }
        if !extra.isEmpty { lines.append(extra) }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static let suites = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AES_256_CM_HMAC_SHA1_80"]

    func negotiate(_ text: String, policy: SRTPPolicy) throws -> AudioOfferAnswer.Outcome {
        AudioOfferAnswer(srtp: policy, srtpSuites: Self.suites).negotiate(offer: try SessionDescription(parsing: text))
    }

    @Test func cryptoLinesAreParsedInOrderAndWrittenBack() throws {
        let text = Self.offer(crypto: ["1 AES_CM_128_HMAC_SHA1_80 \(Self.key80)", "2 AES_CM_128_HMAC_SHA1_32 \(Self.key32) KDR=1"])
        let audio = try #require(try SessionDescription(parsing: text).audio)
        #expect(audio.crypto == [
            SDESCrypto(tag: 1, suite: "AES_CM_128_HMAC_SHA1_80", keyParameters: Self.key80),
            SDESCrypto(tag: 2, suite: "AES_CM_128_HMAC_SHA1_32", keyParameters: Self.key32, sessionParameters: ["KDR=1"]),
        ])
        let written = try SessionDescription(parsing: text).text
        #expect(written.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 \(Self.key80)\r\n"))
        #expect(written.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 \(Self.key32) KDR=1\r\n"))
    }

    @Test func aMalformedCryptoLineIsSkippedNotFatal() throws {
        let audio = try #require(try SessionDescription(parsing: Self.offer(crypto: ["x AES_CM_128_HMAC_SHA1_80 \(Self.key80)", "3 AES"])).audio)
        #expect(audio.crypto.isEmpty)
    }

    @Test func keysNeverAppearInDescriptions() throws {
        let text = Self.offer(crypto: ["1 AES_CM_128_HMAC_SHA1_80 \(Self.key80)"])
        let sdp = try SessionDescription(parsing: text)
        let secret = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
        #expect(!"\(sdp)".contains(secret))
        #expect(!String(reflecting: sdp.audio!.crypto[0]).contains(secret))
        guard case .agreed(var audio) = try negotiate(text, policy: .allowed) else { Issue.record("no agreement"); return }
        audio.srtp?.localKeyParameters = "inline:bG9jYWwta2V5LW1hdGVyaWFsLTAxMjM0NTY3ODkw"
        #expect(!"\(audio)".contains(secret) && !"\(audio)".contains("bG9jYWwta2V5"))
        #expect("\(audio)".contains("AES_CM_128_HMAC_SHA1_80 (tag 1)"))
    }

    /// The trunk policy × what the offer carries.
    @Test(arguments: [
        // (policy, proto, crypto?, expected: nil = plain, suite = SRTP, "488:…" = refused)
        (SRTPPolicy.disabled, "RTP/AVP", false, nil as String?),
        (.disabled, "RTP/AVP", true, nil),
        (.disabled, "RTP/SAVP", true, "488:offer requires SRTP (RTP/SAVP) and the trunk has SRTP disabled"),
        (.allowed, "RTP/AVP", false, nil),
        (.allowed, "RTP/AVP", true, "AES_CM_128_HMAC_SHA1_80"),
        (.allowed, "RTP/SAVP", true, "AES_CM_128_HMAC_SHA1_80"),
        (.allowed, "RTP/SAVP", false, "488:no usable SRTP crypto suite (offered no a=crypto)"),
        (.required, "RTP/AVP", false, "488:the trunk requires SRTP and the offer has no a=crypto"),
        (.required, "RTP/AVP", true, "AES_CM_128_HMAC_SHA1_80"),
        (.required, "RTP/SAVP", true, "AES_CM_128_HMAC_SHA1_80"),
        (.required, "RTP/SAVP", false, "488:no usable SRTP crypto suite (offered no a=crypto)"),
    ])
    func policyDecides(policy: SRTPPolicy, proto: String, crypto: Bool, expected: String?) throws {
        let text = Self.offer(proto: proto, crypto: crypto ? ["1 AES_CM_128_HMAC_SHA1_80 \(Self.key80)"] : [])
        switch try negotiate(text, policy: policy) {
        case .notAcceptable(let reason):
            #expect("488:\(reason)" == expected)
        case .agreed(let audio):
            #expect(audio.srtp?.suite == expected)
            #expect(audio.transport == proto)
        }
    }

    @Test func theFirstSupportedSuiteWithoutSessionParametersIsChosenAndAnsweredWithItsTag() throws {
        let text = Self.offer(crypto: [
            "1 F8_128_HMAC_SHA1_80 \(Self.key80)",
            "2 AES_CM_128_HMAC_SHA1_80 \(Self.key80) UNENCRYPTED_SRTP",
            "3 AES_CM_128_HMAC_SHA1_32 \(Self.key32)",
        ])
        guard case .agreed(var audio) = try negotiate(text, policy: .required) else { Issue.record("no agreement"); return }
        #expect(audio.srtp == NegotiatedSRTP(tag: 3, suite: "AES_CM_128_HMAC_SHA1_32", remoteKeyParameters: Self.key32))
        audio.srtp?.localKeyParameters = "inline:bG9jYWwta2V5LW1hdGVyaWFsLTAxMjM0NTY3ODkw"
        let answer = audio.answer(localAddress: "192.0.2.5", localPort: 20002, sessionID: "7").text
        #expect(answer.contains("m=audio 20002 RTP/SAVP 0 101\r\n"))
        #expect(answer.contains("a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:bG9jYWwta2V5LW1hdGVyaWFsLTAxMjM0NTY3ODkw\r\n"))
        #expect(!answer.contains(Self.key32))
    }

    @Test func unsupportedSuitesOnlyAreRefusedNamingTheSuites() throws {
        let text = Self.offer(crypto: ["1 F8_128_HMAC_SHA1_80 \(Self.key80)"])
        #expect(try negotiate(text, policy: .allowed) == .notAcceptable("no usable SRTP crypto suite (offered crypto suites F8_128_HMAC_SHA1_80)"))
    }

    // MARK: - Opus

    static let opusOffer = """
        v=0\r
        o=- 1 1 IN IP4 10.0.0.1\r
        s=-\r
        c=IN IP4 10.0.0.1\r
        t=0 0\r
        m=audio 4000 RTP/AVP 0 111 101 110\r
        a=rtpmap:111 opus/48000/2\r
        a=fmtp:111 maxplaybackrate=16000; useinbandfec=1; stereo=1\r
        a=rtpmap:101 telephone-event/8000\r
        a=rtpmap:110 telephone-event/48000\r

        """

    @Test func opusIsTakenInOurOrderWithItsFmtpAndTheMatchingTelephoneEvent() throws {
        let ours = AudioOfferAnswer(supportedEncodings: ["OPUS", "PCMU"], preferOurOrder: true)
        guard case .agreed(let audio) = ours.negotiate(offer: try SessionDescription(parsing: Self.opusOffer)) else {
            Issue.record("no agreement"); return
        }
        #expect(audio.encoding == "OPUS" && audio.payloadType == 111 && audio.clockRate == 48000 && audio.channels == 2)
        #expect(audio.remoteFormatParameters == "maxplaybackrate=16000; useinbandfec=1; stereo=1")
        #expect(audio.telephoneEventPayloadType == 110)
        let answer = audio.answer(localAddress: "192.0.2.5", localPort: 20002, sessionID: "7").text
        #expect(answer.contains("m=audio 20002 RTP/AVP 111 110\r\n"))
        #expect(answer.contains("a=rtpmap:111 opus/48000/2\r\n"))
        #expect(answer.contains("a=fmtp:111 useinbandfec=1; stereo=0; sprop-stereo=0\r\n"))
        #expect(answer.contains("a=rtpmap:110 telephone-event/48000\r\n"))
    }

    @Test func theOfferersOrderWinsUnlessWeInsistAndOpusMustBe48000Stereo() throws {
        let offer = try SessionDescription(parsing: Self.opusOffer)
        guard case .agreed(let audio) = AudioOfferAnswer(supportedEncodings: ["OPUS", "PCMU"]).negotiate(offer: offer) else {
            Issue.record("no agreement"); return
        }
        #expect(audio.encoding == "PCMU" && audio.telephoneEventPayloadType == 101 && audio.localFormatParameters == nil)
        let wrongRate = try SessionDescription(parsing: Self.opusOffer.replacingOccurrences(of: "opus/48000/2", with: "opus/16000"))
        guard case .notAcceptable = AudioOfferAnswer(supportedEncodings: ["OPUS"]).negotiate(offer: wrongRate) else {
            Issue.record("opus/16000 is not RFC 7587 Opus"); return
        }
    }
}
