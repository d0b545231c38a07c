import CSpeexDSP

/// Says whether a frame of caller audio is speech: libspeexdsp's preprocessor VAD (its speech probability from
/// the spectrum against a running noise estimate), gated by a level floor so that digital silence and faint line
/// noise never count. Owns one `SpeexPreprocessState`; confined to the call's event loop.
///
/// libspeexdsp is what Debian ships and the project already links; libfvad (WebRTC's VAD) is not packaged.
/// The preprocessor rewrites the frame it analyses, so each frame is copied into a scratch buffer first;
/// denoising and gain control are off. No allocation per frame.
public final class VoiceActivityDetector {
    /// Below −45 dBFS RMS a frame is not speech whatever the spectrum says (telephone speech sits near −20 dBFS).
    public static let levelFloor = 184.0

    /// Frames below the floor cannot be speech, and the spectral analysis is most of the detector's cost (about
    /// 19 µs a frame in a release build, the largest single item in a G.711 call's CPU): only one in this many
    /// quiet frames is analysed, enough for the noise estimate to keep learning a quiet line's floor.
    static let quietAnalysisInterval = 4

    public let frameSamples: Int
    private let state: OpaquePointer
    private let scratch: UnsafeMutableBufferPointer<Int16>
    private var quietFrames = 0

    /// - Parameters:
    ///   - sampleRate: rate of the frames (8, 16 or 24 kHz).
    ///   - frameSamples: samples per frame (20 ms: 160, 320, 480); every frame passed must have this many.
    public init(sampleRate: Int, frameSamples: Int) throws(MediaError) {
        guard let state = speex_preprocess_state_init(Int32(frameSamples), Int32(sampleRate)) else {
            throw MediaError(.libraryFailure, "speex_preprocess_state_init(\(frameSamples), \(sampleRate)) failed")
        }
        self.state = state
        self.frameSamples = frameSamples
        scratch = .allocate(capacity: frameSamples)
        scratch.initialize(repeating: 0)
        var off: Int32 = 0
        var on: Int32 = 1
        speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_DENOISE, &off)
        speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_AGC, &off)
        speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_DEREVERB, &off)
        speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_VAD, &on)
    }

    deinit {
        speex_preprocess_state_destroy(state)
        scratch.deallocate()
    }

    /// Whether `frame` (exactly `frameSamples` samples) holds speech. Also advances the noise estimate, so call it
    /// on every frame in order.
    public func isSpeech(_ frame: UnsafeBufferPointer<Int16>) -> Bool {
        precondition(frame.count == frameSamples, "VAD frames must be \(frameSamples) samples")
        var energy = 0.0
        for sample in frame {
            let value = Double(sample)
            energy += value * value
        }
        let loudEnough = (energy / Double(frameSamples)).squareRoot() >= Self.levelFloor
        if !loudEnough {
            quietFrames &+= 1
            guard quietFrames % Self.quietAnalysisInterval == 0 else { return false }
        }
        _ = scratch.update(fromContentsOf: frame)
        let voiced = speex_preprocess_run(state, scratch.baseAddress) != 0
        return voiced && loudEnough
    }
}

@available(*, unavailable)
extension VoiceActivityDetector: Sendable {}
