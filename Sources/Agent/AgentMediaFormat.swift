/// How caller and agent audio travel in `media` messages (docs/agent-protocol.md, "Media formats").
public enum AgentMediaFormat: Sendable, Hashable {
    /// Twilio Media Streams: G.711 μ-law at 8 kHz (`audio/x-mulaw`), what a stock Twilio bot expects.
    case muLaw
    /// 16-bit signed little-endian linear PCM (`audio/l16`), mono, at 16000 or 24000 Hz: keeps an Opus leg's bandwidth.
    case linear16(sampleRate: Int)

    /// The rates `linear16` may use.
    public static let linear16Rates = [16000, 24000]

    public var sampleRate: Int {
        switch self {
        case .muLaw: 8000
        case .linear16(let rate): rate
        }
    }

    /// The `mediaFormat.encoding` announced in `start`.
    public var encoding: String {
        switch self {
        case .muLaw: "audio/x-mulaw"
        case .linear16: "audio/l16"
        }
    }
}
