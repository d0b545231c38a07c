/// Our side of offer/answer for a call we place: the SDP offer, and what the callee's answer agreed to.
///
/// Pure, like `AudioOfferAnswer`, so both directions are tested without sofia or sockets.
public struct AudioOffer: Sendable {
    /// Static payload types (RFC 3551), in our order of preference.
    public static let codecs: [(payloadType: UInt8, encoding: String)] = [(0, "PCMU"), (8, "PCMA")]
    /// The dynamic payload type we offer for RFC 4733 telephone-event.
    public static let telephoneEventPayloadType: UInt8 = 101

    public init() {}

    public func offer(localAddress: String, localPort: Int, sessionID: String) -> SessionDescription {
        var rtpMaps: [UInt8: MediaDescription.RTPMap] = [:]
        for codec in Self.codecs { rtpMaps[codec.payloadType] = .init(encoding: codec.encoding, clockRate: 8000) }
        rtpMaps[Self.telephoneEventPayloadType] = .init(encoding: "telephone-event", clockRate: 8000)
        let media = MediaDescription(
            type: "audio", port: localPort, proto: "RTP/AVP",
            formats: Self.codecs.map(\.payloadType) + [Self.telephoneEventPayloadType], rtpMaps: rtpMaps,
            fmtp: [Self.telephoneEventPayloadType: "0-16"], direction: .sendrecv, packetTime: 20
        )
        return SessionDescription(
            origin: .init(username: "trunkline", sessionID: sessionID, version: sessionID, address: localAddress),
            sessionName: "trunkline", connectionAddress: localAddress, media: [media]
        )
    }

    /// The callee's answer to `offer`: the first of its formats that we offered (RFC 3264 §6.1: the answer lists
    /// what it will use, most preferred first).
    public func negotiate(answer: SessionDescription) -> AudioOfferAnswer.Outcome {
        guard let audio = answer.audio else { return .notAcceptable("answer has no audio stream") }
        guard audio.proto == "RTP/AVP" else { return .notAcceptable("answer uses transport \(audio.proto), we offered RTP/AVP") }
        guard audio.port != 0 else { return .notAcceptable("callee rejected the audio stream") }
        guard let address = audio.connectionAddress ?? answer.connectionAddress else {
            return .notAcceptable("answer has no connection address")
        }
        let offered = Set(Self.codecs.map(\.encoding))
        let choice = audio.formats.lazy.compactMap { pt -> (UInt8, String)? in
            guard let map = audio.rtpMap(for: pt), map.clockRate == 8000, offered.contains(map.encoding.uppercased()) else { return nil }
            return (pt, map.encoding.uppercased())
        }.first
        guard let (payloadType, encoding) = choice else {
            return .notAcceptable("answer chose no codec we offered")
        }
        let telephoneEvent = audio.formats.first { pt in
            guard let map = audio.rtpMap(for: pt) else { return false }
            return map.encoding.lowercased() == "telephone-event" && map.clockRate == 8000
        }
        var agreed = NegotiatedAudio(
            remoteAddress: address, remotePort: audio.port, encoding: encoding, payloadType: payloadType,
            telephoneEventPayloadType: telephoneEvent,
            telephoneEventFormats: telephoneEvent.flatMap { audio.fmtp[$0] },
            direction: audio.direction.answer
        )
        agreed.remoteRTCPPort = audio.rtcpPort
        agreed.remoteRTCPAddress = audio.rtcpAddress
        return .agreed(agreed)
    }
}
