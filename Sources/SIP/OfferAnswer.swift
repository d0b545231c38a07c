/// RFC 3264 offer/answer for one audio stream: picks the codec and the telephone-event format.
///
/// A pure function of the offer and what we support, so it is tested without sofia or sockets.
public struct AudioOfferAnswer: Sendable {
    /// Codecs we can take, by encoding name (case-insensitive per RFC 4855), in our order of preference
    /// when `preferOurOrder` is set; otherwise the offerer's order wins (what carriers expect).
    public var supportedEncodings: [String]
    public var preferOurOrder: Bool

    public init(supportedEncodings: [String] = ["PCMU", "PCMA"], preferOurOrder: Bool = false) {
        self.supportedEncodings = supportedEncodings
        self.preferOurOrder = preferOurOrder
    }

    /// What both sides agreed, or why not.
    public enum Outcome: Sendable, Equatable {
        case agreed(NegotiatedAudio)
        /// 488 Not Acceptable Here, with the reason for the log and call record.
        case notAcceptable(String)
    }

    public func negotiate(offer: SessionDescription) -> Outcome {
        guard let audio = offer.audio else { return .notAcceptable("offer has no audio stream") }
        guard audio.proto == "RTP/AVP" else { return .notAcceptable("unsupported transport \(audio.proto)") }
        guard let address = audio.connectionAddress ?? offer.connectionAddress else {
            return .notAcceptable("offer has no connection address")
        }
        guard audio.port != 0 else { return .notAcceptable("offer disabled the audio stream") }

        let wanted = supportedEncodings.map { $0.uppercased() }
        let offered: [(pt: UInt8, encoding: String)] = audio.formats.compactMap { pt in
            guard let map = audio.rtpMap(for: pt), map.clockRate == 8000, map.channels == 1 else { return nil }
            return (pt, map.encoding.uppercased())
        }
        let usable = offered.filter { wanted.contains($0.encoding) }
        let choice = preferOurOrder
            ? usable.min { wanted.firstIndex(of: $0.encoding)! < wanted.firstIndex(of: $1.encoding)! }
            : usable.first
        guard let choice else {
            let names = offered.map(\.encoding).joined(separator: ",")
            return .notAcceptable("no common codec (offered \(names.isEmpty ? "none usable" : names))")
        }
        let telephoneEvent = audio.formats.first { pt in
            guard let map = audio.rtpMap(for: pt) else { return false }
            return map.encoding.lowercased() == "telephone-event" && map.clockRate == 8000
        }
        return .agreed(NegotiatedAudio(
            remoteAddress: address, remotePort: audio.port, encoding: choice.encoding, payloadType: choice.pt,
            telephoneEventPayloadType: telephoneEvent,
            telephoneEventFormats: telephoneEvent.flatMap { audio.fmtp[$0] },
            direction: audio.direction.answer
        ))
    }
}

/// The audio stream both sides agreed on: what the media layer needs, plus what the answer must say.
public struct NegotiatedAudio: Sendable, Equatable {
    public var remoteAddress: String
    public var remotePort: Int
    public var encoding: String
    public var payloadType: UInt8
    public var telephoneEventPayloadType: UInt8?
    public var telephoneEventFormats: String?
    /// Our direction in the answer.
    public var direction: MediaDescription.Direction

    /// The SDP answer for a local RTP address and port.
    public func answer(localAddress: String, localPort: Int, sessionID: String) -> SessionDescription {
        var rtpMaps: [UInt8: MediaDescription.RTPMap] = [payloadType: .init(encoding: encoding, clockRate: 8000)]
        var fmtp: [UInt8: String] = [:]
        var formats = [payloadType]
        if let event = telephoneEventPayloadType {
            formats.append(event)
            rtpMaps[event] = .init(encoding: "telephone-event", clockRate: 8000)
            fmtp[event] = telephoneEventFormats ?? "0-16"
        }
        let media = MediaDescription(
            type: "audio", port: localPort, proto: "RTP/AVP", formats: formats, rtpMaps: rtpMaps, fmtp: fmtp,
            direction: direction, packetTime: 20
        )
        return SessionDescription(
            origin: .init(username: "trunkline", sessionID: sessionID, version: sessionID, address: localAddress),
            sessionName: "trunkline", connectionAddress: localAddress, media: [media]
        )
    }
}
