import Foundation
import Logging
import NIOCore
import Testing
import TrunklineTestSupport
@testable import Media

@Suite struct OpusParametersTests {
    @Test func rfc7587ParametersAreRead() {
        let p = OpusParameters(fmtp: "maxplaybackrate=16000;sprop-maxcapturerate=16000; stereo=1; useinbandfec=1;usedtx=1; maxaveragebitrate=20000; cbr=1; x=y")
        #expect(p.maxPlaybackRate == 16000 && p.maxCaptureRate == 16000 && p.stereo && p.useInbandFEC && p.useDTX)
        #expect(p.maxAverageBitrate == 20000 && p.constantBitrate)
        #expect(OpusParameters(fmtp: nil) == OpusParameters())
        // Out-of-range or malformed values keep the defaults.
        let bad = OpusParameters(fmtp: "maxplaybackrate=100; maxaveragebitrate=abc; stereo")
        #expect(bad == OpusParameters())
    }

    @Test func maxPlaybackRateLimitsTheEncodersBandwidth() {
        #expect(OpusFrameEncoder.bandwidth(forPlaybackRate: 8000) == 1101)  // OPUS_BANDWIDTH_NARROWBAND
        #expect(OpusFrameEncoder.bandwidth(forPlaybackRate: 16000) == 1103)  // WIDEBAND
        #expect(OpusFrameEncoder.bandwidth(forPlaybackRate: 48000) == 1105)  // FULLBAND
    }
}

@Suite struct OpusSessionTests {
    static let tone = ToneAnalysis.tone(frequency: 440, sampleRate: 8000, count: 160 * 25)

    @Test(arguments: [false, true])
    func aToneSurvivesOpusBothWays(stereo: Bool) async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        var peer = OpusParameters()
        peer.stereo = stereo
        peer.useInbandFEC = true
        try await h.start(remote: h.peer.address, codec: .opus(payloadType: 111, peer: peer), telephoneEvent: nil)

        // Inbound: the peer's Opus (20 ms frames, timestamps in 48 kHz units) reaches the delegate as 8 kHz frames.
        let encoder = try OpusFrameEncoder(sampleRate: 8000, peer: OpusParameters(), frameSamples: 160)
        var packet = [UInt8](repeating: 0, count: 1500)
        var stream: [(slot: Int, bytes: [UInt8])] = []
        for i in 0..<25 {
            let n = try #require(Self.tone[(i * 160)..<((i + 1) * 160)].withUnsafeBufferPointer { pcm in
                packet.withUnsafeMutableBytes { encoder.encode(pcm, into: $0) }
            })
            stream.append((i, rtpPacket(pt: 111, seq: UInt16(i), ts: UInt32(960 * i), payload: Array(packet[0..<n]))))
        }
        try await h.peer.sendPaced(stream, to: h.localPort)
        // A loaded test machine may send in bursts, which the jitter buffer sheds a little of: 20 frames suffice.
        var received: [Int16] = []
        while received.count < 160 * 20 {
            if case .audio(let frame) = try await h.delegate.events.next() {
                #expect(frame.count == 160)
                received += frame
            }
        }
        // Past the codec's start-up, the agent hears the tone.
        #expect(ToneAnalysis.energyShare(received[1600...], frequency: 440, sampleRate: 8000) > 0.8)

        // Outbound: what the agent enqueues goes out as Opus every 20 ms, 960 timestamp units apart.
        let first = try await h.enqueue(Self.tone)
        let decoder = try OpusFrameDecoder(sampleRate: 8000)
        var pcm = [Int16](repeating: 0, count: decoder.maxFrameSamples)
        var heard: [Int16] = []
        var timestamps: [UInt32] = []
        for datagram in try await h.peer.datagrams(30, from: first) {
            let header = try #require(datagram.header)
            #expect(header.payloadType == 111)
            timestamps.append(header.timestamp)
            let n = try #require(datagram.payload.withUnsafeBytes { payload in pcm.withUnsafeMutableBufferPointer { decoder.decode(payload, into: $0) } })
            heard += pcm[0..<n]
        }
        #expect(zip(timestamps, timestamps.dropFirst()).allSatisfy { $1 &- $0 == 960 })
        // From the first packet that carries it, past the codec's start-up, the caller hears the tone.
        #expect(ToneAnalysis.energyShare(heard[800..<3800], frequency: 440, sampleRate: 8000) > 0.8)
    }

    @Test func aCorruptOpusPayloadIsCountedNotFatal() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, codec: .opus(payloadType: 111), telephoneEvent: nil)
        // TOC code 3 with a frame count of 0 is invalid (RFC 6716 §3.2.5).
        try await h.peer.send(rtpPacket(pt: 111, seq: 1, ts: 0, payload: [0x03, 0x00]), to: h.localPort)
        let silence: [UInt8] = [0xF8]  // a TOC byte alone: one valid 20 ms frame with no data (DTX)
        try await h.peer.send(rtpPacket(pt: 111, seq: 2, ts: 960, payload: silence), to: h.localPort)
        guard case .audio = try await h.delegate.events.next() else { Issue.record("expected audio"); return }
        #expect(try await h.onLoop { $0.statistics.decodeFailures } == 1)
    }
}
