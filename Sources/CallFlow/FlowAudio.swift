import Foundation
import Media

/// What one route's flow plays, at the route's agent rate: its WAV prompts converted once, its fixed `say` texts
/// rendered once (at startup), and the synthesizer for texts with variables. Shared by the route's calls.
public struct FlowAudio: Sendable {
    public let sampleRate: Int
    /// `CallFlow.prompts`, at `sampleRate`.
    public let prompts: [[Int16]]
    public let speech: SpeechSynthesizer?

    /// Converts the prompts and renders every fixed text, blocking: call at startup, not on an event loop.
    /// - Throws: when the flow has `say` steps and espeak-ng is missing or fails (`speech` nil: not installed).
    public init(flow: CallFlow, sampleRate: Int, speech: SpeechSynthesizer?) throws {
        self.sampleRate = sampleRate
        self.prompts = try flow.prompts.map { prompt in
            try prompt.samples.withUnsafeBufferPointer { try Resampler.convert($0, from: WAVFile.sampleRate, to: sampleRate) }
        }
        if flow.says {
            guard let speech else { throw SpeechSynthesizer.Failure.notInstalled }
            for text in flow.fixedTexts { try speech.renderBlocking(text, sampleRate: sampleRate) }
        }
        self.speech = speech
    }
}
