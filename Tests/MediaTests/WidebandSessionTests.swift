import Foundation
import NIOCore
import Testing
import TrunklineTestSupport
@testable import Media

/// A session whose agent side runs at 16 kHz: Opus keeps its bandwidth, G.711 is resampled (libspeexdsp).
@Suite struct WidebandSessionTests {
    /// 20 ms frames from the delegate until `count` samples have come.
    private func frames(_ h: SessionHarness, samples count: Int) async throws -> [Int16] {
        var received: [Int16] = []
        while received.count < count {
            if case .audio(let frame) = try await h.delegate.events.next() {
                #expect(frame.count == 320)
                received += frame
            }
        }
        return received
    }

    @Test func opusAt16kHzCarriesA6kHzToneNarrowbandCannot() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, codec: .opus(payloadType: 111), telephoneEvent: nil, agentSampleRate: 16000)
        var wideband = OpusParameters()
        wideband.maxPlaybackRate = 16000
        let encoder = try OpusFrameEncoder(sampleRate: 16000, peer: wideband, frameSamples: 320)
        let tone = ToneAnalysis.tone(frequency: 6000, sampleRate: 16000, count: 320 * 25)
        var packet = [UInt8](repeating: 0, count: 1500)
        var stream: [(slot: Int, bytes: [UInt8])] = []
        for i in 0..<25 {
            let n = try #require(tone[(i * 320)..<((i + 1) * 320)].withUnsafeBufferPointer { pcm in
                packet.withUnsafeMutableBytes { encoder.encode(pcm, into: $0) }
            })
            stream.append((i, rtpPacket(pt: 111, seq: UInt16(i), ts: UInt32(960 * i), payload: Array(packet[0..<n]))))
        }
        try await h.peer.sendPaced(stream, to: h.localPort)
        let received = try await frames(h, samples: 320 * 20)
        #expect(ToneAnalysis.energyShare(received[3200...], frequency: 6000, sampleRate: 16000) > 0.8)
    }

    @Test func g711IsResampledBothWays() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, codec: .pcmu, telephoneEvent: nil, agentSampleRate: 16000)
        // In: 8 kHz μ-law 1 kHz tone → 320-sample 16 kHz frames holding that tone.
        let codes = G711Law.muLaw.encoded(ToneAnalysis.tone(frequency: 1000, sampleRate: 8000, count: 160 * 15))
        try await h.peer.sendPaced(
            (0..<15).map { i in (i, rtpPacket(pt: 0, seq: UInt16(i), ts: UInt32(160 * i), payload: Array(codes[(i * 160)..<((i + 1) * 160)]))) },
            to: h.localPort)
        let received = try await frames(h, samples: 320 * 12)
        #expect(ToneAnalysis.energyShare(received[960...], frequency: 1000, sampleRate: 16000) > 0.8)

        // Out: 16 kHz PCM from the agent → 160-byte μ-law packets carrying it at 8 kHz.
        let agentTone = ToneAnalysis.tone(frequency: 1500, sampleRate: 16000, count: 16000)
        let first = try await h.enqueue(agentTone)
        var heard: [Int16] = []
        for datagram in try await h.peer.datagrams(50, from: first) {
            #expect(datagram.payload.count == 160)
            heard += G711Law.muLaw.decoded(datagram.payload)
        }
        #expect(ToneAnalysis.energyShare(heard[400...], frequency: 1500, sampleRate: 8000) > 0.8)
    }

    @Test func an8kHzPromptOnAWidebandCallPlaysAtItsOwnSpeed() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, codec: .pcmu, telephoneEvent: nil, agentSampleRate: 16000)
        // 1 s of 1 kHz at 8 kHz, as the fallback prompt is: 50 packets of tone, not 25 at double speed.
        let prompt = ToneAnalysis.tone(frequency: 1000, sampleRate: 8000, count: 8000)
        try await h.onLoop { session in prompt.withUnsafeBufferPointer { session.enqueue($0, sampleRate: 8000) } }
        var loud = 0, quietAfterTone = 0
        var heard: [Int16] = []
        while quietAfterTone < 5 {
            let pcm = G711Law.muLaw.decoded(try await h.peer.inbox.next().payload)
            if ToneAnalysis.rms(pcm[...]) > 1000 {
                loud += 1
                heard += pcm
            } else if loud > 0 {
                quietAfterTone += 1
            }
        }
        #expect((49...51).contains(loud))
        #expect(ToneAnalysis.bestShare(heard, frequency: 1000, sampleRate: 8000, window: 1600) > 0.8)
    }
}
