import Foundation
import Logging
import NIOCore
import Testing
import TrunklineTestSupport
@testable import Media

/// SRTP packets as a peer makes and reads them, with its own libsrtp contexts.
private func protect(_ packet: [UInt8], with stream: SRTPStream) throws -> [UInt8] {
    var buffer = packet + [UInt8](repeating: 0, count: SRTPStream.maxTrailer)
    let n = try #require(buffer.withUnsafeMutableBytes { stream.protect($0.baseAddress!, length: packet.count, capacity: $0.count) })
    return Array(buffer[0..<n])
}

private func unprotect(_ packet: [UInt8], with stream: SRTPStream) -> [UInt8]? {
    var buffer = packet + [UInt8](repeating: 0, count: SRTPStream.maxTrailer)
    guard case .ok(let n) = buffer.withUnsafeMutableBytes({ stream.unprotect($0.baseAddress!, length: packet.count, capacity: $0.count) })
    else { return nil }
    return Array(buffer[0..<n])
}

@Suite struct SRTPKeyTests {
    @Test(arguments: SRTPSuite.allCases)
    func aGeneratedKeyRoundTripsThroughSDES(suite: SRTPSuite) throws {
        let key = SRTPKey.generate(suite)
        #expect(key.material.count == suite.keyMaterialLength)
        #expect(try SRTPKey(suite: suite, sdesKeyParameters: key.sdesKeyParameters) == key)
        #expect(key != SRTPKey.generate(suite), "keys come from a CSPRNG, never repeat")
    }

    @Test func lifetimeIsAcceptedAndMKIAndBadLengthsAreRefusedWithoutQuotingTheKey() throws {
        let base64 = SRTPKey.generate(.aesCM128HmacSHA1_80).sdesKeyParameters.dropFirst("inline:".count)
        _ = try SRTPKey(suite: .aesCM128HmacSHA1_80, sdesKeyParameters: "inline:\(base64)|2^31")
        _ = try SRTPKey(suite: .aesCM128HmacSHA1_80, sdesKeyParameters: "inline:\(base64)|1048576")
        for bad in ["inline:\(base64)|2^20|1:4", "inline:\(base64)|soon", "uri:\(base64)", "inline:\(base64.dropLast(4))"] {
            #expect {
                try SRTPKey(suite: .aesCM128HmacSHA1_80, sdesKeyParameters: bad)
            } throws: { error in
                (error as? MediaError)?.code == .invalidKey && !"\(error)".contains(base64.prefix(12))
            }
        }
        // A 30-byte key is not a 46-byte AES-256 key.
        #expect(throws: MediaError(.invalidKey, "")) { try SRTPKey(suite: .aes256CMHmacSHA1_80, sdesKeyParameters: "inline:\(base64)") }
    }

    @Test func descriptionsNeverShowKeyMaterial() {
        let key = SRTPKey.generate(.aesCM128HmacSHA1_80)
        let secret = String(key.sdesKeyParameters.dropFirst("inline:".count).prefix(16))
        let config = SRTPConfiguration(remote: key, local: SRTPKey.generate(.aesCM128HmacSHA1_80))
        for text in ["\(key)", String(reflecting: key), "\(config)", String(reflecting: config)] {
            #expect(!text.contains(secret))
        }
    }

    @Test func theDebianLibraryRunsTheRFC4568SuitesAndWeProbeGCM() {
        #expect(Set(SRTPSuite.available).isSuperset(of: [.aesCM128HmacSHA1_80, .aesCM128HmacSHA1_32, .aes256CMHmacSHA1_80]))
    }
}

/// `RTPSession` with SRTP over real UDP on 127.0.0.1, against a peer using libsrtp directly.
@Suite struct SRTPSessionTests {
    @Test(arguments: SRTPSuite.available)
    func audioFlowsBothWaysProtected(suite: SRTPSuite) async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        let peerKey = SRTPKey.generate(suite), ourKey = SRTPKey.generate(suite)
        let peerOut = try SRTPStream(key: peerKey, direction: .outbound)
        let peerIn = try SRTPStream(key: ourKey, direction: .inbound)
        try await h.start(remote: h.peer.address, srtp: SRTPConfiguration(remote: peerKey, local: ourKey))

        // Ours: every packet authenticates with our key and decrypts to 160 bytes of μ-law silence.
        for _ in 0..<3 {
            let datagram = try await h.peer.inbox.next()
            #expect(datagram.bytes.count > 172, "SRTP adds an authentication tag")
            let plain = try #require(unprotect(datagram.bytes, with: peerIn))
            #expect(plain.count == 172 && Array(plain[12...]) == [UInt8](repeating: 0xFF, count: 160))
        }
        // Theirs: decrypted and decoded.
        let tone = G711Law.muLaw.encoded(ToneAnalysis.tone(frequency: 440, sampleRate: 8000, count: 160))
        try await h.peer.send(try protect(rtpPacket(pt: 0, seq: 1, ts: 0, payload: tone), with: peerOut), to: h.localPort)
        let event = try await nextAudio(h)
        #expect(event == G711Law.muLaw.decoded(tone))
        let stats = try await h.onLoop { $0.statistics }
        #expect(stats.srtp && stats.packetsReceived == 1 && stats.srtpAuthenticationFailures == 0)
    }

    @Test func forgedTamperedAndReplayedPacketsAreCountedAndDroppedButTheStreamGoesOn() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        let peerKey = SRTPKey.generate(.aesCM128HmacSHA1_80)
        let peerOut = try SRTPStream(key: peerKey, direction: .outbound)
        try await h.start(
            remote: h.peer.address, telephoneEvent: nil,
            srtp: SRTPConfiguration(remote: peerKey, local: SRTPKey.generate(.aesCM128HmacSHA1_80)))
        let payload = [UInt8](repeating: 0x55, count: 160)

        let first = try protect(rtpPacket(pt: 0, seq: 10, ts: 0, payload: payload), with: peerOut)
        try await h.peer.send(first, to: h.localPort)
        _ = try await nextAudio(h)
        // Plain RTP, a flipped payload bit, a packet keyed by someone else, and a replay of the first.
        try await h.peer.send(rtpPacket(pt: 0, seq: 11, ts: 160, payload: payload), to: h.localPort)
        var tampered = try protect(rtpPacket(pt: 0, seq: 12, ts: 320, payload: payload), with: peerOut)
        tampered[20] ^= 0x01
        try await h.peer.send(tampered, to: h.localPort)
        let stranger = try SRTPStream(key: SRTPKey.generate(.aesCM128HmacSHA1_80), direction: .outbound)
        try await h.peer.send(try protect(rtpPacket(pt: 0, seq: 13, ts: 480, payload: payload), with: stranger), to: h.localPort)
        try await h.peer.send(first, to: h.localPort)
        // A good packet after them still plays: loopback UDP keeps order, so the rest have been handled.
        try await h.peer.send(try protect(rtpPacket(pt: 0, seq: 14, ts: 640, payload: payload), with: peerOut), to: h.localPort)
        _ = try await nextAudio(h)
        let stats = try await h.onLoop { $0.statistics }
        #expect(stats.srtpAuthenticationFailures == 3)
        #expect(stats.srtpReplayFailures == 1)
        #expect(stats.packetsReceived == 2)
    }

    private func nextAudio(_ h: SessionHarness) async throws -> [Int16] {
        while true {
            if case .audio(let samples) = try await h.delegate.events.next() { return samples }
        }
    }
}
