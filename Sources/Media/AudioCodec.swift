/// An audio codec as negotiated in SDP: what the session encodes outgoing audio with and which payload type
/// it expects incoming audio on.
public struct AudioCodec: Sendable, Hashable {
    /// How the payload is coded.
    public enum Encoding: Sendable, Hashable {
        case g711(G711Law)
        /// Opus (RFC 7587), with what the peer asked to receive.
        case opus(OpusParameters)
    }

    /// The SDP encoding name: "PCMU", "PCMA" or "opus".
    public var name: String
    /// The RTP payload type negotiated for it (0 and 8 are the static ones; a peer may use a dynamic one).
    public var payloadType: UInt8
    /// RTP clock rate in Hz: 8000 for G.711, 48000 for Opus (whatever its audio bandwidth).
    public var clockRate: Int
    public var encoding: Encoding

    public init(name: String, payloadType: UInt8, clockRate: Int, encoding: Encoding) {
        self.name = name
        self.payloadType = payloadType
        self.clockRate = clockRate
        self.encoding = encoding
    }

    public init(name: String, payloadType: UInt8, clockRate: Int, law: G711Law) {
        self.init(name: name, payloadType: payloadType, clockRate: clockRate, encoding: .g711(law))
    }

    /// The G.711 law, or nil for Opus.
    public var law: G711Law? {
        if case .g711(let law) = encoding { return law }
        return nil
    }

    /// RTP timestamp units per 20 ms packet.
    public var timestampsPerPacket: Int { clockRate / 50 }

    /// G.711 μ-law, static payload type 0.
    public static let pcmu = AudioCodec(name: "PCMU", payloadType: 0, clockRate: 8000, law: .muLaw)
    /// G.711 A-law, static payload type 8.
    public static let pcma = AudioCodec(name: "PCMA", payloadType: 8, clockRate: 8000, law: .aLaw)

    /// Opus on a dynamic payload type (RFC 7587: always `opus/48000/2` in SDP).
    public static func opus(payloadType: UInt8, peer: OpusParameters = OpusParameters()) -> AudioCodec {
        AudioCodec(name: "opus", payloadType: payloadType, clockRate: 48000, encoding: .opus(peer))
    }

    /// The codec for an SDP encoding name (PCMU, PCMA, OPUS; any case) on `payloadType`, or nil if unknown.
    /// - Parameter formatParameters: the peer's `a=fmtp` for it (Opus reads its RFC 7587 parameters).
    public init?(sdpName: String, payloadType: UInt8, formatParameters: String?) {
        switch sdpName.uppercased() {
        case "PCMU": self = .pcmu
        case "PCMA": self = .pcma
        case "OPUS": self = .opus(payloadType: payloadType, peer: OpusParameters(fmtp: formatParameters))
        default: return nil
        }
        self.payloadType = payloadType
    }
}
