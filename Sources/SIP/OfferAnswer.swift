/// RFC 3264 offer/answer for one audio stream: picks the codec, the telephone-event format and, with SDES
/// (RFC 4568), the SRTP crypto suite.
///
/// A pure function of the offer and what we support, so it is tested without sofia or sockets.
public struct AudioOfferAnswer: Sendable {
    /// Codecs we can take, by encoding name (case-insensitive per RFC 4855), in our order of preference
    /// when `preferOurOrder` is set; otherwise the offerer's order wins (what carriers expect).
    public var supportedEncodings: [String]
    public var preferOurOrder: Bool
    /// Whether the stream may, must or must not be SRTP.
    public var srtp: SRTPPolicy
    /// SDES crypto-suite names we can key (the media layer's list); the offerer's order picks among them.
    public var srtpSuites: [String]
    /// Our `a=fmtp` for Opus in the answer: what we want to receive (RFC 7587 §7).
    public var opusParameters: String

    /// Stereo off both ways (agents are mono), in-band FEC on, so the receiver can conceal a lost packet.
    public static let defaultOpusParameters = "useinbandfec=1; stereo=0; sprop-stereo=0"

    public init(
        supportedEncodings: [String] = ["PCMU", "PCMA"], preferOurOrder: Bool = false, srtp: SRTPPolicy = .disabled,
        srtpSuites: [String] = [], opusParameters: String = AudioOfferAnswer.defaultOpusParameters
    ) {
        self.supportedEncodings = supportedEncodings
        self.preferOurOrder = preferOurOrder
        self.srtp = srtp
        self.srtpSuites = srtpSuites
        self.opusParameters = opusParameters
    }

    /// What both sides agreed, or why not.
    public enum Outcome: Sendable, Equatable {
        case agreed(NegotiatedAudio)
        /// 488 Not Acceptable Here, with the reason for the log and call record (never key material).
        case notAcceptable(String)
    }

    public func negotiate(offer: SessionDescription) -> Outcome {
        guard let audio = offer.audio else { return .notAcceptable("offer has no audio stream") }
        let savp = audio.proto == "RTP/SAVP"
        guard audio.proto == "RTP/AVP" || savp else { return .notAcceptable("unsupported transport \(audio.proto)") }
        guard let address = audio.connectionAddress ?? offer.connectionAddress else {
            return .notAcceptable("offer has no connection address")
        }
        guard audio.port != 0 else { return .notAcceptable("offer disabled the audio stream") }

        let srtp: NegotiatedSRTP?
        switch chooseCrypto(audio, savp: savp) {
        case .success(let chosen): srtp = chosen
        case .failure(let refusal): return .notAcceptable(refusal.reason)
        }

        let wanted = supportedEncodings.map { $0.uppercased() }
        let offered: [(pt: UInt8, map: MediaDescription.RTPMap)] = audio.formats.compactMap { pt in
            guard let map = audio.rtpMap(for: pt), Self.isUsable(map) else { return nil }
            return (pt, map)
        }
        let usable = offered.filter { wanted.contains($0.map.encoding.uppercased()) }
        let rank = { (format: (pt: UInt8, map: MediaDescription.RTPMap)) in wanted.firstIndex(of: format.map.encoding.uppercased())! }
        let choice = preferOurOrder ? usable.min { rank($0) < rank($1) } : usable.first
        guard let choice else {
            let names = audio.formats.compactMap { audio.rtpMap(for: $0)?.encoding.uppercased() }
                .filter { $0 != "TELEPHONE-EVENT" }.joined(separator: ",")
            return .notAcceptable("no common codec (offered \(names.isEmpty ? "none usable" : names))")
        }
        // RFC 4733 events are timed on the audio clock, so only a telephone-event at the codec's rate is usable.
        let telephoneEvent = audio.formats.first { pt in
            guard let map = audio.rtpMap(for: pt) else { return false }
            return map.encoding.lowercased() == "telephone-event" && map.clockRate == choice.map.clockRate
        }
        let isOpus = choice.map.encoding.uppercased() == "OPUS"
        // RFC 3389 comfort noise at the codec's clock (8 kHz: G.711); Opus has its own DTX.
        let comfortNoise = audio.formats.first { pt in
            guard let map = audio.rtpMap(for: pt) else { return false }
            return map.encoding.uppercased() == "CN" && map.clockRate == choice.map.clockRate && !isOpus
        }
        var agreed = NegotiatedAudio(
            remoteAddress: address, remotePort: audio.port, encoding: choice.map.encoding.uppercased(),
            payloadType: choice.pt, clockRate: choice.map.clockRate, channels: choice.map.channels,
            remoteFormatParameters: audio.fmtp[choice.pt], localFormatParameters: isOpus ? opusParameters : nil,
            telephoneEventPayloadType: telephoneEvent,
            telephoneEventFormats: telephoneEvent.flatMap { audio.fmtp[$0] },
            direction: audio.direction.answer, transport: audio.proto, srtp: srtp
        )
        agreed.comfortNoisePayloadType = comfortNoise
        agreed.remoteRTCPPort = audio.rtcpPort
        agreed.remoteRTCPAddress = audio.rtcpAddress
        agreed.rtcpMultiplexed = audio.rtcpMultiplexed
        return .agreed(agreed)
    }

    /// RFC 2543 hold: a connection address of 0.0.0.0 (or ::) means "do not send to me".
    static func isHoldAddress(_ address: String) -> Bool {
        address == "0.0.0.0" || address == "::"
    }

    /// G.711 at 8 kHz mono; Opus always as `opus/48000/2` (RFC 7587 §7, whatever is actually coded).
    private static func isUsable(_ map: MediaDescription.RTPMap) -> Bool {
        switch map.encoding.uppercased() {
        case "OPUS": map.clockRate == 48000 && map.channels == 2
        default: map.clockRate == 8000 && map.channels == 1
        }
    }

    private struct Refusal: Error {
        var reason: String
    }

    /// The first offered `a=crypto` whose suite we support and that asks for no session parameter we do not
    /// implement (RFC 4568 §7.1.1: the answerer picks one line). SDES on `RTP/AVP` ("best effort" SRTP) is
    /// taken when allowed.
    private func chooseCrypto(_ audio: MediaDescription, savp: Bool) -> Result<NegotiatedSRTP?, Refusal> {
        if srtp == .disabled {
            return savp ? .failure(Refusal(reason: "offer requires SRTP (RTP/SAVP) and the trunk has SRTP disabled")) : .success(nil)
        }
        let usable = audio.crypto.first { srtpSuites.contains($0.suite) && $0.sessionParameters.isEmpty }
        if let usable {
            return .success(NegotiatedSRTP(tag: usable.tag, suite: usable.suite, remoteKeyParameters: usable.keyParameters))
        }
        if savp || srtp == .required {
            let suites = audio.crypto.map(\.suite).joined(separator: ",")
            let offered = audio.crypto.isEmpty ? "no a=crypto" : "crypto suites \(suites)"
            let reason = srtp == .required && !savp && audio.crypto.isEmpty
                ? "the trunk requires SRTP and the offer has no a=crypto"
                : "no usable SRTP crypto suite (offered \(offered))"
            return .failure(Refusal(reason: reason))
        }
        return .success(nil)
    }
}

/// The SDES crypto both sides use: the offerer's line we accepted, and our own key once the gateway made one.
///
/// Holds key material: `description` shows the suite and tag only.
public struct NegotiatedSRTP: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var tag: Int
    public var suite: String
    /// The offerer's `inline:…` key parameters: the key it sends with.
    public var remoteKeyParameters: String
    /// Our `inline:…` key parameters for the answer: the key we send with. Set before answering.
    public var localKeyParameters: String?

    public init(tag: Int, suite: String, remoteKeyParameters: String, localKeyParameters: String? = nil) {
        self.tag = tag
        self.suite = suite
        self.remoteKeyParameters = remoteKeyParameters
        self.localKeyParameters = localKeyParameters
    }

    public var description: String { "\(suite) (tag \(tag))" }
    public var debugDescription: String { "NegotiatedSRTP(\(description))" }
}

/// The audio stream both sides agreed on: what the media layer needs, plus what the answer must say.
public struct NegotiatedAudio: Sendable, Equatable {
    public var remoteAddress: String
    public var remotePort: Int
    /// Upper-cased encoding name: PCMU, PCMA or OPUS.
    public var encoding: String
    public var payloadType: UInt8
    /// The RTP clock rate from the rtpmap (8000 for G.711, 48000 for Opus).
    public var clockRate: Int
    public var channels: Int
    /// The offer's `a=fmtp` for the chosen codec (Opus: what the peer wants to receive).
    public var remoteFormatParameters: String?
    /// Our `a=fmtp` for the chosen codec in the answer.
    public var localFormatParameters: String?
    public var telephoneEventPayloadType: UInt8?
    public var telephoneEventFormats: String?
    /// Our direction in the answer.
    public var direction: MediaDescription.Direction
    /// The offer's transport (`RTP/AVP` or `RTP/SAVP`), echoed in the answer.
    public var transport: String
    /// SDES-keyed SRTP, or nil for plain RTP.
    public var srtp: NegotiatedSRTP?
    /// RFC 3389 comfort noise (`CN/8000`), when the offer had it at the codec's clock; echoed in the answer.
    public var comfortNoisePayloadType: UInt8?
    /// The peer's `a=rtcp:` port and address, if it named them (else RTCP goes to the RTP port + 1).
    public var remoteRTCPPort: Int?
    public var remoteRTCPAddress: String?
    /// RTCP shares the RTP port (the offer had `a=rtcp-mux`, and the answer says so too).
    public var rtcpMultiplexed = false

    /// Whether we send RTP: our direction allows it and the peer did not give the RFC 2543 hold address
    /// (it holds the call with `sendonly`/`inactive`, or `c=0.0.0.0`).
    public var sendsMedia: Bool {
        (direction == .sendrecv || direction == .sendonly) && !AudioOfferAnswer.isHoldAddress(remoteAddress)
    }

    /// Whether the peer is expected to send RTP.
    public var receivesMedia: Bool { direction == .sendrecv || direction == .recvonly }

    public init(
        remoteAddress: String, remotePort: Int, encoding: String, payloadType: UInt8, clockRate: Int = 8000,
        channels: Int = 1, remoteFormatParameters: String? = nil, localFormatParameters: String? = nil,
        telephoneEventPayloadType: UInt8? = nil, telephoneEventFormats: String? = nil,
        direction: MediaDescription.Direction = .sendrecv, transport: String = "RTP/AVP", srtp: NegotiatedSRTP? = nil
    ) {
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.encoding = encoding
        self.payloadType = payloadType
        self.clockRate = clockRate
        self.channels = channels
        self.remoteFormatParameters = remoteFormatParameters
        self.localFormatParameters = localFormatParameters
        self.telephoneEventPayloadType = telephoneEventPayloadType
        self.telephoneEventFormats = telephoneEventFormats
        self.direction = direction
        self.transport = transport
        self.srtp = srtp
    }

    /// The SDP answer for a local RTP address and port. With SRTP, `srtp.localKeyParameters` must be set.
    /// - Parameter version: the `o=` version, raised by each new description in the session (RFC 3264 §8);
    ///   the session id when not given.
    public func answer(localAddress: String, localPort: Int, sessionID: String, version: String? = nil) -> SessionDescription {
        var rtpMaps: [UInt8: MediaDescription.RTPMap] = [
            payloadType: .init(encoding: encoding == "OPUS" ? "opus" : encoding, clockRate: clockRate, channels: channels)
        ]
        var fmtp: [UInt8: String] = [:]
        if let localFormatParameters { fmtp[payloadType] = localFormatParameters }
        var formats = [payloadType]
        if let event = telephoneEventPayloadType {
            formats.append(event)
            rtpMaps[event] = .init(encoding: "telephone-event", clockRate: clockRate)
            fmtp[event] = telephoneEventFormats ?? "0-16"
        }
        if let comfortNoise = comfortNoisePayloadType {
            formats.append(comfortNoise)
            rtpMaps[comfortNoise] = .init(encoding: "CN", clockRate: clockRate)
        }
        var crypto: [SDESCrypto] = []
        if let srtp {
            precondition(srtp.localKeyParameters != nil, "SRTP answer without a local key")
            crypto = [SDESCrypto(tag: srtp.tag, suite: srtp.suite, keyParameters: srtp.localKeyParameters ?? "")]
        }
        var media = MediaDescription(
            type: "audio", port: localPort, proto: transport, formats: formats, rtpMaps: rtpMaps, fmtp: fmtp,
            direction: direction, packetTime: 20, crypto: crypto
        )
        media.rtcpMultiplexed = rtcpMultiplexed
        return SessionDescription(
            origin: .init(username: "trunkline", sessionID: sessionID, version: version ?? sessionID, address: localAddress),
            sessionName: "trunkline", connectionAddress: localAddress, media: [media]
        )
    }
}
