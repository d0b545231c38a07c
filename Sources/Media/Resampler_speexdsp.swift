import CSpeexDSP

/// A fixed-ratio resampler for one direction of one call (libspeexdsp's); owns one `SpeexResamplerState`.
///
/// Used where a G.711 leg (8 kHz) meets a wideband agent (16 or 24 kHz). Keeps its filter history between calls
/// to `process`, so consecutive frames join without clicks. Confined to the call's event loop; no allocation.
/// Whole prompts are converted with `convert`.
public final class Resampler {
    /// Speex' quality 5: its VoIP default, ≈ 0.1 % THD for speech, a few µs per 20 ms frame.
    static let quality: Int32 = 5

    let inputRate: Int
    let outputRate: Int
    private let state: OpaquePointer

    init(from inputRate: Int, to outputRate: Int) throws(MediaError) {
        var error: Int32 = 0
        guard let state = speex_resampler_init(1, UInt32(inputRate), UInt32(outputRate), Self.quality, &error), error == 0 else {
            throw MediaError(.libraryFailure, "speex_resampler_init \(inputRate)→\(outputRate) Hz failed (\(error))")
        }
        self.inputRate = inputRate
        self.outputRate = outputRate
        self.state = state
    }

    deinit {
        speex_resampler_destroy(state)
    }

    /// Output samples `count` input samples make (exact when the ratio is an integer, as 8↔16↔24 kHz are).
    func outputCount(forInput count: Int) -> Int { count * outputRate / inputRate }

    /// Resamples all of `input` into the start of `output`.
    /// - Returns: samples written.
    func process(_ input: UnsafeBufferPointer<Int16>, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        var consumed = UInt32(input.count)
        var produced = UInt32(output.count)
        _ = speex_resampler_process_int(state, 0, input.baseAddress, &consumed, output.baseAddress, &produced)
        return Int(produced)
    }
}

extension Resampler {
    /// Converts a whole prompt (a WAV file, rendered speech) to another rate, flushing the filter so its tail is
    /// kept. Allocates: for prompts, not for streamed audio.
    public static func convert(_ samples: UnsafeBufferPointer<Int16>, from inputRate: Int, to outputRate: Int) throws(MediaError) -> [Int16] {
        guard inputRate != outputRate else { return Array(samples) }
        let resampler = try Resampler(from: inputRate, to: outputRate)
        let latency = Int(speex_resampler_get_input_latency(resampler.state))
        var padded = Array(samples)
        padded.append(contentsOf: repeatElement(0, count: latency))
        var converted = [Int16](repeating: 0, count: (padded.count * outputRate + inputRate - 1) / inputRate + 64)
        let produced = padded.withUnsafeBufferPointer { input in
            converted.withUnsafeMutableBufferPointer { resampler.process(input, into: $0) }
        }
        // Drop the filter's delay at the start, so the prompt starts when it is queued.
        let delay = Int(speex_resampler_get_output_latency(resampler.state))
        let wanted = samples.count * outputRate / inputRate
        let end = min(produced, delay + wanted)
        return Array(converted[min(delay, end)..<end])
    }
}

@available(*, unavailable)
extension Resampler: Sendable {}
