import Foundation

/// DTMF key tones synthesised independently of spandsp (two sines per key, ITU-T Q.23 frequencies), so tests can
/// check the gateway's detector and silencer against a signal they did not make themselves.
public enum DTMFSignal {
    private static let rows: [Double] = [697, 770, 852, 941]
    private static let columns: [Double] = [1209, 1336, 1477, 1633]
    private static let layout: [[Character]] = [["1", "2", "3", "A"], ["4", "5", "6", "B"], ["7", "8", "9", "C"], ["*", "0", "#", "D"]]

    /// 8 kHz PCM: each key sounds `toneMs`, then `gapMs` of silence. `amplitude` is per tone (6000 ≈ −10 dBm0).
    public static func pcm(_ keys: String, toneMs: Int = 100, gapMs: Int = 100, amplitude: Double = 6000) -> [Int16] {
        var samples: [Int16] = []
        for key in keys {
            guard let row = layout.firstIndex(where: { $0.contains(key) }), let column = layout[row].firstIndex(of: key) else {
                preconditionFailure("not a DTMF key")
            }
            let (low, high) = (rows[row], columns[column])
            for i in 0..<(toneMs * 8) {
                let t = Double(i) / 8000
                samples.append(Int16(amplitude * (sin(2 * .pi * low * t) + sin(2 * .pi * high * t))))
            }
            samples += [Int16](repeating: 0, count: gapMs * 8)
        }
        return samples
    }

    /// The same as G.711 μ-law bytes (for RTP payloads and pcaps).
    public static func muLaw(_ keys: String, toneMs: Int = 100, gapMs: Int = 100, amplitude: Double = 6000) -> [UInt8] {
        pcm(keys, toneMs: toneMs, gapMs: gapMs, amplitude: amplitude).map(MuLawReference.encode)
    }
}
