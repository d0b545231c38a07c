import CallFlow
import NIOPosix
import Testing
import TrunklineTestSupport

/// Real espeak-ng (Debian's, installed by scripts/install-deps.sh).
@Suite("SpeechSynthesizer")
struct SpeechSynthesizerTests {
    @Test("say renders audible speech at 8 and 16 kHz, of a plausible length, and caches it", arguments: [8000, 16000])
    func speech(rate: Int) async throws {
        let speech = try SpeechSynthesizer()
        let text = "Welcome to Trunkline, rendered at \(rate) hertz."
        #expect(speech.cached(text, sampleRate: rate) == nil)
        let samples = try await speech.render(text, sampleRate: rate, on: MultiThreadedEventLoopGroup.singleton.next()).get()
        let seconds = Double(samples.count) / Double(rate)
        #expect(seconds > 1 && seconds < 8, "\(seconds) s of speech")
        #expect(ToneAnalysis.rms(samples[...]) > 500, "speech must not be silent")
        // Speech, not a tone: no single frequency holds most of the energy.
        for frequency in [300.0, 500.0, 1000.0] {
            #expect(ToneAnalysis.bestShare(samples, frequency: frequency, sampleRate: Double(rate), window: rate / 5) < 0.9)
        }
        #expect(speech.cached(text, sampleRate: rate) == samples)
    }

    @Test("a missing espeak-ng is a clear error")
    func missing() {
        #expect(throws: SpeechSynthesizer.Failure.self) { try SpeechSynthesizer(searchPath: "/nonexistent") }
    }
}
