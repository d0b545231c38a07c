import Foundation
import Testing
import TrunklineTestSupport

@testable import Media

/// The secure-capture silencer: key tones never get through, speech around them does, one frame out per frame in.
@Suite struct ToneSilencerTests {
    static func speech(ms: Int) -> [Int16] {
        (0..<(ms * 8)).map { Int16(5000 * sin(2 * Double.pi * 440 * Double($0) / 8000) + 2000 * sin(2 * Double.pi * 180 * Double($0) / 8000)) }
    }

    static func run(_ silencer: ToneSilencer, _ input: [Int16], eventAtFrame: Int? = nil) -> [Int16] {
        var output: [Int16] = []
        for (index, start) in stride(from: 0, to: input.count, by: 160).enumerated() {
            if index == eventAtFrame { silencer.eventSeen() }
            input[start..<(start + 160)].withUnsafeBufferPointer { frame in
                silencer.process(frame) { output += $0 }
            }
        }
        silencer.flush { output += $0 }
        return output
    }

    static func detected(_ samples: [Int16]) -> String {
        let detector = InbandDTMFDetector()!
        var keys = ""
        for start in stride(from: 0, to: samples.count - 159, by: 160) {
            samples[start..<(start + 160)].withUnsafeBufferPointer { detector.process($0) { keys.append($0) } }
        }
        return keys
    }

    @Test func keyTonesAreSilencedWithGuardsAndSpeechAroundThemPasses() throws {
        let input = Self.speech(ms: 400) + DTMFSignal.pcm("5", toneMs: 120, gapMs: 0) + Self.speech(ms: 400)
            + DTMFSignal.pcm("3", toneMs: 80, gapMs: 0) + Self.speech(ms: 400)
        #expect(Self.detected(input) == "53")
        let silencer = try #require(ToneSilencer())
        let output = Self.run(silencer, input)
        #expect(output.count == input.count)
        #expect(Self.detected(output) == "")
        // Speech well before the first tone (beyond the 60 ms look-back) is untouched.
        #expect(Array(output[0..<2400]) == Array(input[0..<2400]))
        // ≥ 120 ms + 80 ms of tone, each widened by guards; less than everything.
        #expect(silencer.framesSilenced >= 10 && silencer.framesSilenced <= 30, "\(silencer.framesSilenced)")
        #expect(silencer.isQuiet)
    }

    @Test func anRFC4733PressSilencesTheLookBackAndTheHold() throws {
        let input = Self.speech(ms: 1000)
        let silencer = try #require(ToneSilencer())
        let output = Self.run(silencer, input, eventAtFrame: 20)
        let silentFrames = stride(from: 0, to: output.count, by: 160).filter { output[$0..<($0 + 160)].allSatisfy { $0 == 0 } }.map { $0 / 160 }
        // The three frames still in the line when the event came (17-19), and ten from the event on (20-29).
        #expect(silentFrames == Array(17...29))
    }
}
