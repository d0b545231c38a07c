/// Our side of offer/answer for a call we place: the SDP offer, and what the callee's answer agreed to.
///
/// The offer lists the trunk's codecs in its order and, per its SRTP policy, our SDES keys; the answer is read
/// by the same `AudioOfferAnswer` that answers inbound offers (the answer names the codec, the telephone-event
/// and the crypto line it took, just as an offer would), plus the checks only an answer needs.
/// Pure, so both directions are tested without sofia or sockets.
public struct AudioOffer: Sendable {
    /// Encodings to offer (upper-case: PCMU, PCMA, OPUS), most preferred first.
    public var encodings: [String]
    /// `disabled`: plain RTP/AVP. `allowed`: RTP/AVP carrying our `a=crypto` (SRTP if the callee answers with
    /// one, plain otherwise). `required`: RTP/SAVP, and an answer without crypto is refused.
    public var srtp: SRTPPolicy
    /// Our keys, one `a=crypto` line each (tags 1…n), when `srtp` is not disabled.
    public var keys: [SDESCrypto]
    /// Our Opus `a=fmtp`: what we want to receive (RFC 7587 §7).
    public var opusParameters: String

    /// Static payload types (RFC 3551) and the dynamic ones we give Opus and telephone-event.
    static let payloadTypes: [String: UInt8] = ["PCMU": 0, "PCMA": 8, "OPUS": 96]
    /// The dynamic payload type we offer for RFC 4733 telephone-event at 8 kHz.
    public static let telephoneEventPayloadType: UInt8 = 101
    /// …and at 48 kHz, for Opus (events are timed on the audio clock).
    public static let wideTelephoneEventPayloadType: UInt8 = 102

    public init(
        encodings: [String] = ["PCMU", "PCMA"], srtp: SRTPPolicy = .disabled, keys: [SDESCrypto] = [],
        opusParameters: String = AudioOfferAnswer.defaultOpusParameters
    ) {
        self.encodings = encodings.map { $0.uppercased() }.filter { Self.payloadTypes[$0] != nil }
        self.srtp = srtp
        self.keys = srtp == .disabled ? [] : keys
        self.opusParameters = opusParameters
        precondition(!self.encodings.isEmpty, "an offer needs a codec")
        precondition(srtp == .disabled || !keys.isEmpty, "an SRTP offer needs a key")
    }

    private var proto: String { srtp == .required ? "RTP/SAVP" : "RTP/AVP" }

    public func offer(localAddress: String, localPort: Int, sessionID: String) -> SessionDescription {
        var rtpMaps: [UInt8: MediaDescription.RTPMap] = [:]
        var fmtp: [UInt8: String] = [:]
        var formats: [UInt8] = []
        for encoding in encodings {
            let payloadType = Self.payloadTypes[encoding]!
            formats.append(payloadType)
            if encoding == "OPUS" {
                rtpMaps[payloadType] = .init(encoding: "opus", clockRate: 48000, channels: 2)
                fmtp[payloadType] = opusParameters
            } else {
                rtpMaps[payloadType] = .init(encoding: encoding, clockRate: 8000)
            }
        }
        if encodings.contains(where: { $0 != "OPUS" }) {
            formats.append(Self.telephoneEventPayloadType)
            rtpMaps[Self.telephoneEventPayloadType] = .init(encoding: "telephone-event", clockRate: 8000)
            fmtp[Self.telephoneEventPayloadType] = "0-16"
        }
        if encodings.contains("OPUS") {
            formats.append(Self.wideTelephoneEventPayloadType)
            rtpMaps[Self.wideTelephoneEventPayloadType] = .init(encoding: "telephone-event", clockRate: 48000)
            fmtp[Self.wideTelephoneEventPayloadType] = "0-16"
        }
        let media = MediaDescription(
            type: "audio", port: localPort, proto: proto, formats: formats, rtpMaps: rtpMaps, fmtp: fmtp,
            direction: .sendrecv, packetTime: 20, crypto: keys
        )
        return SessionDescription(
            origin: .init(username: "trunkline", sessionID: sessionID, version: sessionID, address: localAddress),
            sessionName: "trunkline", connectionAddress: localAddress, media: [media]
        )
    }

    /// The callee's answer to `offer`: the first of its formats that we offered (RFC 3264 §6.1: the answer lists
    /// what it will use, most preferred first), and with SRTP the crypto line it took, paired with our key of
    /// the same tag.
    public func negotiate(answer: SessionDescription) -> AudioOfferAnswer.Outcome {
        guard let audio = answer.audio else { return .notAcceptable("answer has no audio stream") }
        guard audio.port != 0 else { return .notAcceptable("callee rejected the audio stream") }
        let acceptable = srtp == .allowed ? ["RTP/AVP", "RTP/SAVP"] : [proto]
        guard acceptable.contains(audio.proto) else { return .notAcceptable("answer uses transport \(audio.proto), we offered \(proto)") }
        let reader = AudioOfferAnswer(
            supportedEncodings: encodings, preferOurOrder: false, srtp: srtp, srtpSuites: keys.map(\.suite),
            opusParameters: opusParameters)
        switch reader.negotiate(offer: answer) {
        case .notAcceptable(let why):
            return .notAcceptable(why.hasPrefix("no common codec") ? "answer chose no codec we offered" : why)
        case .agreed(var agreed):
            guard let chosen = agreed.srtp else { return .agreed(agreed) }
            guard let ours = keys.first(where: { $0.tag == chosen.tag && $0.suite == chosen.suite }) else {
                return .notAcceptable("answer's crypto line (tag \(chosen.tag), \(chosen.suite)) matches none we offered")
            }
            agreed.srtp?.localKeyParameters = ours.keyParameters
            return .agreed(agreed)
        }
    }
}
