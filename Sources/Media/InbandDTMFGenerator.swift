import CSpanDSP

/// DTMF as in-band tones (spandsp's `dtmf_tx`), for legs without telephone-event or routes set to `dtmf: inband`:
/// each key is a 100 ms dual tone at −10 dBm0 per frequency (the level RFC 4733 events announce) with +2 dB
/// twist toward the high group, followed by 100 ms of silence; a pause is 500 ms of silence. The samples go into
/// the call's playout buffer like any other audio, so they are paced by the RTP clock.
public enum InbandDTMFGenerator {
    public static let toneMilliseconds = 100
    public static let gapMilliseconds = 100
    /// dBm0 of the low-group tone.
    static let level: Int32 = -10
    /// dB the high-group tone is louder (ITU-T Q.23 allows a small positive twist; receivers expect it).
    static let twist: Int32 = 2

    /// 8 kHz PCM for `sequence`. Not for the media path: it allocates the whole rendering at once (at most
    /// 64 × 500 ms).
    public static func render(_ sequence: DTMFSequence) -> [Int16] {
        guard let state = dtmf_tx_init(nil) else { return [] }
        defer { dtmf_tx_free(state) }
        dtmf_tx_set_level(state, level, twist)
        dtmf_tx_set_timing(state, Int32(toneMilliseconds), Int32(gapMilliseconds))
        var samples: [Int16] = []
        var chunk = [Int16](repeating: 0, count: 160)
        for step in sequence.steps {
            switch step {
            case .pause:
                samples += [Int16](repeating: 0, count: DTMFSequence.pauseMilliseconds * 8)
            case .key(let code):
                var key = CChar(bitPattern: DTMFSequence.character(forEvent: code).asciiValue ?? UInt8(ascii: "0"))
                _ = dtmf_tx_put(state, &key, 1)
                while true {
                    let produced = chunk.withUnsafeMutableBufferPointer { dtmf_tx(state, $0.baseAddress, Int32($0.count)) }
                    guard produced > 0 else { break }
                    samples += chunk[0..<Int(produced)]
                }
            }
        }
        return samples
    }
}
