import Testing

@testable import Media

@Suite struct InbandDTMFGeneratorTests {
    @Test func keysAndPausesParseAndBadInputIsRefusedWhole() throws {
        #expect(try DTMFSequence("1w#d").steps == [.key(1), .pause, .key(11), .key(15)])
        #expect(throws: DTMFSequence.Invalid.notAKey(position: 2)) { try DTMFSequence("12x") }
        #expect(throws: DTMFSequence.Invalid.tooLong) { try DTMFSequence(String(repeating: "1", count: 65)) }
        #expect("\(DTMFSequence.Invalid.notAKey(position: 2))" == "character 3 is neither a DTMF key nor w")
    }

    @Test func renderedTonesDecodeToTheSameKeysWithTheRightTiming() throws {
        let samples = InbandDTMFGenerator.render(try DTMFSequence("15w9*0#D"))
        // 7 keys × (100 ms tone + 100 ms gap) + one 500 ms pause, at 8 kHz.
        #expect(samples.count == 7 * 1600 + 4000)
        let detector = try #require(InbandDTMFDetector())
        var keys = ""
        for start in stride(from: 0, to: samples.count - 159, by: 160) {
            samples[start..<(start + 160)].withUnsafeBufferPointer { detector.process($0) { keys.append($0) } }
        }
        #expect(keys == "159*0#D")
        // −10 dBm0 low tone with +2 dB twist: a peak near a third of full scale, far from clipping.
        let peak = samples.map { abs(Int($0)) }.max() ?? 0
        #expect((8000...20000).contains(peak), "peak \(peak)")
        // The pause is silence.
        #expect(samples[(2 * 1600)..<(2 * 1600 + 4000)].allSatisfy { $0 == 0 })
    }
}
