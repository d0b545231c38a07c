import Foundation
import NIOCore
import Testing
@testable import Media

/// The caller-turn detector and the voice activity detector it is fed by, on generated and synthesized speech.
@Suite struct TurnDetectionTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    /// The time of frame `n` (20 ms each).
    static func at(_ n: Int) -> NIODeadline { start + .milliseconds(Int64(n) * 20) }

    @Test func aTurnEndsAfterTheSilenceAndIsDatedAtItsFirstSilentFrame() {
        var turns = TurnDetector(endSilenceMilliseconds: 100)  // 5 frames
        var events: [(Int, TurnDetector.Event)] = []
        let pattern = Array(repeating: true, count: 10) + Array(repeating: false, count: 10)
        for (n, speech) in pattern.enumerated() {
            let event = turns.frame(isSpeech: speech, at: Self.at(n))
            if event != .none { events.append((n, event)) }
        }
        #expect(events.map(\.0) == [2, 10, 14])
        #expect(events.map(\.1) == [.speechStarted, .paused(at: Self.at(10)), .turnEnded(at: Self.at(10))])
    }

    @Test func aShortPauseResumesTheTurnAndAClickIsNoTurn() {
        var turns = TurnDetector(endSilenceMilliseconds: 100)
        // A 40 ms click, silence, speech with a 60 ms breath, then the end.
        let pattern = [true, true, false, false] + Array(repeating: true, count: 5) + [false, false, false]
            + Array(repeating: true, count: 5) + Array(repeating: false, count: 5)
        let events = pattern.enumerated().map { turns.frame(isSpeech: $1, at: Self.at($0)) }.filter { $0 != .none }
        #expect(events == [.speechStarted, .paused(at: Self.at(9)), .resumed, .paused(at: Self.at(17)), .turnEnded(at: Self.at(17))])
    }

    /// Synthesized speech (the espeak-ng prompts the project ships), then digital silence, then line noise.
    @Test func theVoiceActivityDetectorTellsSpeechFromSilenceAndFaintNoise() throws {
        let speech = try WAVFile.load(path: Self.prompt("digit-7.wav")).samples
        let vad = try VoiceActivityDetector(sampleRate: 8000, frameSamples: 160)
        let decisions = Self.decisions(vad, speech + Array(repeating: 0, count: 8000) + Self.noise(seconds: 1, amplitude: 60))
        let speechFrames = speech.count / 160
        let voiced = decisions[0..<speechFrames].filter { $0 }.count
        #expect(voiced * 100 / speechFrames >= 40, "only \(voiced) of \(speechFrames) speech frames voiced")
        #expect(!decisions[(speechFrames + 1)...].contains(true), "silence or faint noise judged speech")
    }

    @Test func turnsInSpeechSeparatedBySilenceAreFoundOncePerUtterance() throws {
        let words = try ["digit-1.wav", "digit-2.wav", "digit-3.wav"].map { try WAVFile.load(path: Self.prompt($0)).samples }
        let pause = Array(repeating: Int16(0), count: 8000)  // 1 s
        var audio: [Int16] = []
        var wordEnds: [Int] = []  // the frame after each word's last audible one (the prompts end in quiet)
        for word in words {
            let lastLoud = word.lastIndex { abs(Int($0)) > 500 } ?? 0
            wordEnds.append((audio.count + lastLoud) / 160 + 1)
            audio += word + pause
        }
        let vad = try VoiceActivityDetector(sampleRate: 8000, frameSamples: 160)
        var turns = TurnDetector(endSilenceMilliseconds: 400)
        var ends: [Int] = []
        for (n, speech) in Self.decisions(vad, audio).enumerated() {
            if case .turnEnded(let at) = turns.frame(isSpeech: speech, at: Self.at(n)) {
                ends.append(Int((at - Self.start).nanoseconds / 20_000_000))
            }
        }
        #expect(ends.count == 3, "turn ends at frames \(ends); words end at \(wordEnds)")
        for (found, truth) in zip(ends, wordEnds) {
            // A word fades out: its last quiet frames may already count as silence.
            #expect((truth - 6)...(truth + 1) ~= found, "turn end at frame \(found), word ends at \(truth)")
        }
    }

    static func decisions(_ vad: VoiceActivityDetector, _ audio: [Int16]) -> [Bool] {
        stride(from: 0, to: audio.count - 159, by: 160).map { start in
            audio[start..<(start + 160)].withUnsafeBufferPointer { vad.isSpeech($0) }
        }
    }

    static func noise(seconds: Int, amplitude: Int16) -> [Int16] {
        var generator = SystemRandomNumberGenerator()
        return (0..<(seconds * 8000)).map { _ in Int16.random(in: -amplitude...amplitude, using: &generator) }
    }

    static func prompt(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("prompts").appendingPathComponent(name).path
    }
}
