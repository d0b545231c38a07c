import Foundation

/// Measures of a test signal, so a test can tell the agent's tone from silence or noise.
public enum ToneAnalysis {
    /// Root mean square of the samples (0 for digital silence).
    public static func rms(_ samples: ArraySlice<Int16>) -> Double {
        guard !samples.isEmpty else { return 0 }
        return (samples.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(samples.count)).squareRoot()
    }

    /// Share (0…1) of the signal's energy at `frequency` (Goertzel over the whole slice, Hann-windowed):
    /// near 1 for a pure tone at that frequency, near 0 for silence, noise or another tone.
    public static func energyShare(_ samples: ArraySlice<Int16>, frequency: Double, sampleRate: Double) -> Double {
        let n = samples.count
        guard n > 1 else { return 0 }
        let omega = 2 * Double.pi * frequency / sampleRate
        let coefficient = 2 * cos(omega)
        var s1 = 0.0, s2 = 0.0, total = 0.0
        for (i, sample) in samples.enumerated() {
            let window = 0.5 - 0.5 * cos(2 * Double.pi * Double(i) / Double(n - 1))
            let x = Double(sample) * window
            total += x * x
            let s0 = x + coefficient * s1 - s2
            s2 = s1
            s1 = s0
        }
        guard total > 0 else { return 0 }
        let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
        // For a Hann-windowed sine, power ≈ total · n/2 · (0.25/0.375) (window mean² over mean square): a pure tone gives ≈ 1.
        return min(1, power / (total * Double(n) / 2 * (0.25 / 0.375)))
    }

    /// The highest `energyShare` over windows of `window` samples (stepping half a window): finds a tone somewhere
    /// in a recording that also holds silence or codec start-up.
    public static func bestShare(_ samples: [Int16], frequency: Double, sampleRate: Double, window: Int) -> Double {
        stride(from: 0, to: max(0, samples.count - window), by: max(1, window / 2)).map {
            energyShare(samples[$0..<($0 + window)], frequency: frequency, sampleRate: sampleRate)
        }.max() ?? 0
    }

    /// 16-bit samples of a sine tone.
    public static func tone(frequency: Double, sampleRate: Double, amplitude: Double = 8000, count: Int, phase: Int = 0) -> [Int16] {
        (0..<count).map { Int16(amplitude * sin(2 * Double.pi * frequency * Double($0 + phase) / sampleRate)) }
    }
}
