import Testing
@testable import Media

@Suite struct G711Tests {
    private func decode(_ law: G711Law, _ codes: [UInt8]) -> [Int16] {
        var out = [Int16](repeating: 0, count: codes.count)
        codes.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { law.decode(src, into: $0) } }
        return out
    }

    private func encode(_ law: G711Law, _ pcm: [Int16]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: pcm.count)
        pcm.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { law.encode(src, into: $0) } }
        return out
    }

    @Test(arguments: [G711Law.muLaw, .aLaw])
    func everyCodeSurvivesDecodeEncode(law: G711Law) {
        let codes = (0...255).map { UInt8($0) }
        let back = encode(law, decode(law, codes))
        for code in codes {
            // μ-law has two zeros: 0x7F (−0) decodes to 0, which encodes as 0xFF (+0).
            let expected = (law == .muLaw && code == 0x7F) ? 0xFF : code
            #expect(back[Int(code)] == expected, "code \(code)")
        }
    }

    @Test(arguments: [G711Law.muLaw, .aLaw])
    func linearRoundTripErrorIsBounded(law: G711Law) {
        let pcm = stride(from: Int(Int16.min), through: Int(Int16.max), by: 7).map { Int16($0) }
        let back = decode(law, encode(law, pcm))
        var worst = 0
        for (x, y) in zip(pcm, back) {
            let error = abs(Int(x) - Int(y))
            // Logarithmic quantisation: the step is about 1/16 of the magnitude, so half a step of error.
            let bound = abs(Int(x)) / 16 + 16
            #expect(error <= bound, "x=\(x) y=\(y)")
            worst = max(worst, error)
        }
        #expect(worst > 0)  // it is lossy: a bug that echoed the input would not pass unnoticed
    }

    @Test func silenceDecodesToNearZero() {
        #expect(decode(.muLaw, [G711Law.muLaw.silence]) == [0])
        #expect(abs(Int(decode(.aLaw, [G711Law.aLaw.silence])[0])) <= 8)
        #expect(encode(.muLaw, [0]) == [G711Law.muLaw.silence])
        #expect(encode(.aLaw, [0]) == [G711Law.aLaw.silence])
    }

    @Test func codecsHaveStaticPayloadTypes() {
        #expect(AudioCodec.pcmu.payloadType == 0 && AudioCodec.pcmu.name == "PCMU" && AudioCodec.pcmu.law == .muLaw)
        #expect(AudioCodec.pcma.payloadType == 8 && AudioCodec.pcma.name == "PCMA" && AudioCodec.pcma.law == .aLaw)
        #expect(AudioCodec.pcmu.clockRate == 8000 && AudioCodec.pcma.clockRate == 8000)
    }
}
