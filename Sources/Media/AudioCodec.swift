/// An audio codec as negotiated in SDP: what the session encodes outgoing audio with and which payload type
/// it expects incoming audio on. Only G.711 is carried so far.
public struct AudioCodec: Sendable, Hashable {
    /// The SDP encoding name, "PCMU" or "PCMA".
    public var name: String
    /// The RTP payload type negotiated for it (0 and 8 are the static ones; a peer may use a dynamic one).
    public var payloadType: UInt8
    /// RTP clock rate in Hz: 8000 for G.711.
    public var clockRate: Int
    public var law: G711Law

    public init(name: String, payloadType: UInt8, clockRate: Int, law: G711Law) {
        self.name = name
        self.payloadType = payloadType
        self.clockRate = clockRate
        self.law = law
    }

    /// G.711 μ-law, static payload type 0.
    public static let pcmu = AudioCodec(name: "PCMU", payloadType: 0, clockRate: 8000, law: .muLaw)
    /// G.711 A-law, static payload type 8.
    public static let pcma = AudioCodec(name: "PCMA", payloadType: 8, clockRate: 8000, law: .aLaw)
}
