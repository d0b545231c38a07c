import Foundation

/// The Opus `a=fmtp` parameters (RFC 7587 §6.1) a peer sent: what it wants to receive from us.
///
/// Unknown parameters are ignored and malformed values keep their defaults, as RFC 7587 asks of receivers.
public struct OpusParameters: Sendable, Hashable {
    /// Highest audio rate the peer will play (Hz); we limit our encoder's bandwidth to it.
    public var maxPlaybackRate = 48000
    /// Highest rate the peer captures at (informational for us: we decode at the agent's rate anyway).
    public var maxCaptureRate = 48000
    /// Peak average bitrate the peer wants (bit/s), if it said.
    public var maxAverageBitrate: Int?
    /// The peer prefers stereo; we then send a stereo stream (the agent's mono on both channels).
    public var stereo = false
    /// The peer can use in-band FEC: we put it in our packets.
    public var useInbandFEC = false
    /// The peer accepts discontinuous transmission.
    public var useDTX = false
    /// The peer wants constant bitrate.
    public var constantBitrate = false

    public init() {}

    /// Reads `key=value; key=value` (spaces optional).
    public init(fmtp: String?) {
        self.init()
        guard let fmtp else { return }
        for pair in fmtp.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            let number = Int(parts[1])
            switch parts[0].lowercased() {
            case "maxplaybackrate": if let n = number, (8000...48000).contains(n) { maxPlaybackRate = n }
            case "sprop-maxcapturerate": if let n = number, (8000...48000).contains(n) { maxCaptureRate = n }
            case "maxaveragebitrate": if let n = number, (6000...510_000).contains(n) { maxAverageBitrate = n }
            case "stereo": stereo = parts[1] == "1"
            case "useinbandfec": useInbandFEC = parts[1] == "1"
            case "usedtx": useDTX = parts[1] == "1"
            case "cbr": constantBitrate = parts[1] == "1"
            default: continue
            }
        }
    }
}
