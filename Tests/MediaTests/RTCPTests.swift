import Foundation
import NIOCore
import Testing
import TrunklineTestSupport
@testable import Media

@Suite("RTCP packets and reports")
struct RTCPPacketTests {
    static let block = RTCPReportBlock(
        ssrc: 0xAABB_CCDD, fractionLost: 64, cumulativeLost: -3, extendedHighestSequence: 0x0001_0203, jitter: 77,
        lastSenderReport: 0x1234_5678, delaySinceLastSenderReport: 0x0002_8000)

    static func bytes(_ write: (inout ByteBuffer) -> Void) -> [UInt8] {
        var buffer = ByteBuffer()
        write(&buffer)
        return Array(buffer.readableBytesView)
    }

    @Test func aSenderReportWithABlockAndByeReadsBackAsWritten() throws {
        let info = RTCPSenderInfo(ntpTimestamp: 0xE000_0001_8000_0000, rtpTimestamp: 160, packetCount: 50, octetCount: 8000)
        let packet = Self.bytes {
            RTCPPacket.write(ssrc: 0x0102_0304, senderInfo: info, block: Self.block, cname: Array("me".utf8), bye: true, into: &$0)
        }
        // SR 28 + block 24, SDES 4 + 4 + 2 + 2 + 1 padded to 16, BYE 8.
        #expect(packet.count == 28 + 24 + 16 + 8)
        #expect(packet.count % 4 == 0)
        let report = try #require(packet.withUnsafeBytes { RTCPPacket.parse($0, ourSSRC: 0xAABB_CCDD) })
        #expect(report == RTCPReport(senderSSRC: 0x0102_0304, senderInfo: info, blockAboutUs: Self.block, bye: true))
        #expect(info.compactNTP == 0x0001_8000)
        #expect(packet.withUnsafeBytes { RTCPPacket.isRTCP($0) })
    }

    @Test func aReceiverReportWithoutABlockAboutUsHasNone() throws {
        let packet = Self.bytes {
            RTCPPacket.write(ssrc: 9, senderInfo: nil, block: Self.block, cname: Array("x".utf8), bye: false, into: &$0)
        }
        #expect(packet[1] == 201)
        let report = try #require(packet.withUnsafeBytes { RTCPPacket.parse($0, ourSSRC: 1) })
        #expect(report.senderInfo == nil && report.blockAboutUs == nil && !report.bye)
    }

    @Test func malformedDatagramsAreNotRTCP() {
        let good = Self.bytes { RTCPPacket.write(ssrc: 9, senderInfo: nil, block: nil, cname: [65], bye: false, into: &$0) }
        var wrongVersion = good
        wrongVersion[0] = 0x40
        var tooLong = good
        tooLong[3] = 200
        let sdesFirst = Array(good[8...])
        for bad in [wrongVersion, tooLong, sdesFirst, Array(good.prefix(6)), []] {
            #expect(bad.withUnsafeBytes { RTCPPacket.parse($0, ourSSRC: 9) } == nil)
        }
        let rtp = rtpPacket(pt: 0, seq: 1, ts: 1, payload: [UInt8](repeating: 0xFF, count: 160))
        #expect(!rtp.withUnsafeBytes { RTCPPacket.isRTCP($0) })
    }

    @Test func theReportBlockCountsLossPerIntervalAndEchoesTheLastSenderReport() {
        var reporter = RTCPReporter(interval: .seconds(5), randomised: false)
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        let first = reporter.block(peerSSRC: 7, expected: 100, received: 90, extendedHighestSequence: 99, jitter: 12.4, now: t0)
        #expect(first.fractionLost == 25 && first.cumulativeLost == 10 && first.jitter == 12)
        #expect(first.lastSenderReport == 0 && first.delaySinceLastSenderReport == 0)
        let sr = RTCPSenderInfo(ntpTimestamp: 0xE000_0000_4000_0000, rtpTimestamp: 0, packetCount: 1, octetCount: 160)
        reporter.received(RTCPReport(senderSSRC: 7, senderInfo: sr), now: t0, ntpNow: 0, clockRate: 8000)
        // 100 more expected, none lost; the SR arrived 1.5 s before this report.
        let second = reporter.block(
            peerSSRC: 7, expected: 200, received: 190, extendedHighestSequence: 199, jitter: 0, now: t0 + .milliseconds(1500))
        #expect(second.fractionLost == 0 && second.cumulativeLost == 10)
        #expect(second.lastSenderReport == 0x0000_4000)
        #expect(second.delaySinceLastSenderReport == 98304)
    }

    @Test func roundTripTimeIsArrivalMinusLSRMinusDLSR() throws {
        var reporter = RTCPReporter(interval: .seconds(5), randomised: false)
        // We sent an SR at NTP 100.5 s; the peer held it 0.25 s; its report arrives at 100.79 s: 40 ms round trip.
        let sent: UInt64 = 100 << 32 | 0x8000_0000
        let block = RTCPReportBlock(
            ssrc: 1, fractionLost: 128, cumulativeLost: 42, extendedHighestSequence: 0, jitter: 80,
            lastSenderReport: UInt32(truncatingIfNeeded: sent >> 16), delaySinceLastSenderReport: 16384)
        let arrival = sent + UInt64(0.29 * 4_294_967_296)
        reporter.received(RTCPReport(senderSSRC: 2, blockAboutUs: block), now: .now(), ntpNow: arrival, clockRate: 8000)
        let figures = reporter.figures
        #expect(abs(try #require(figures.roundTripLastMilliseconds) - 40) < 0.1)
        #expect(figures.peerFractionLost == 0.5 && figures.peerPacketsLost == 42 && figures.peerJitterMilliseconds == 10)
        // A DLSR longer than the time since our SR is nonsense, not a negative round trip.
        var bogus = block
        bogus.delaySinceLastSenderReport = 65536
        reporter.received(RTCPReport(senderSSRC: 2, blockAboutUs: bogus), now: .now(), ntpNow: arrival, clockRate: 8000)
        #expect(reporter.figures.roundTrips == 1)
    }

    @Test func reportsFollowTheIntervalExactlyWhenNotRandomised() {
        var reporter = RTCPReporter(interval: .milliseconds(500), randomised: false)
        let t0 = NIODeadline.uptimeNanoseconds(0)
        #expect(!reporter.isDue(now: t0 + .seconds(10)), "not before it begins")
        reporter.begin(now: t0)
        #expect(!reporter.isDue(now: t0))
        #expect(!reporter.isDue(now: t0 + .milliseconds(499)))
        #expect(reporter.isDue(now: t0 + .milliseconds(500)))
        reporter.sent(now: t0 + .milliseconds(500))
        #expect(!reporter.isDue(now: t0 + .milliseconds(999)))
        #expect(reporter.isDue(now: t0 + .milliseconds(1000)))
        // Without an interval nothing is ever due, but the peer's reports are still taken.
        var silent = RTCPReporter(interval: nil, randomised: false)
        silent.begin(now: t0)
        #expect(!silent.isDue(now: t0 + .seconds(3600)))
        silent.received(RTCPReport(senderSSRC: 1, bye: true), now: t0, ntpNow: 0, clockRate: 8000)
        #expect(silent.figures.reportsReceived == 1 && silent.figures.peerSentBye)
    }
}

@Suite("RTCP, hold and comfort noise in a session", .serialized)
struct RTCPSessionTests {
    static let peerSSRC: UInt32 = 0xC0FFEE
    static let silence = [UInt8](repeating: 0xFF, count: 160)

    static func senderReport(ntp: UInt64, block: RTCPReportBlock? = nil, bye: Bool = false) -> [UInt8] {
        RTCPPacketTests.bytes {
            RTCPPacket.write(
                ssrc: peerSSRC, senderInfo: RTCPSenderInfo(ntpTimestamp: ntp, rtpTimestamp: 0, packetCount: 10, octetCount: 1600),
                block: block, cname: Array("peer".utf8), bye: bye, into: &$0)
        }
    }

    /// The next RTCP datagram at `inbox` (RTP skipped), read as the peer: its block about the peer's stream.
    static func nextReport(_ inbox: Inbox<Datagram>, where accept: (RTCPReport) -> Bool = { _ in true }) async throws -> RTCPReport {
        while true {
            let datagram = try await inbox.next()
            guard datagram.bytes.withUnsafeBytes({ RTCPPacket.isRTCP($0) }),
                  let report = datagram.bytes.withUnsafeBytes({ RTCPPacket.parse($0, ourSSRC: peerSSRC) }) else { continue }
            if accept(report) { return report }
        }
    }

    static func sendAudio(_ h: SessionHarness, count: Int, from first: Int = 0) async throws {
        for seq in first..<(first + count) {
            try await h.peer.send(rtpPacket(pt: 0, seq: UInt16(seq), ts: UInt32(seq * 160), payload: silence), to: h.localPort)
        }
    }

    @Test func answersThePeersSenderReportAndMeasuresTheRoundTrip() async throws {
        let h = try await SessionHarness()
        let rtcpPeer = try await Peer(group: h.group, name: "rtcp peer")
        defer { Task { await rtcpPeer.close(); await h.shutdown() } }
        try await h.start(
            remote: h.peer.address, telephoneEvent: nil,
            rtcp: RTCPOptions(remote: rtcpPeer.address, interval: .milliseconds(200), randomised: false))
        try await Self.sendAudio(h, count: 5)
        let peerNTP = RTCPReporter.ntpNow()
        // Taken before sending: the session may hold the SR before this task resumes after the send.
        let peerSRSent = ContinuousClock.now
        try await rtcpPeer.send(Self.senderReport(ntp: peerNTP), to: h.localPort + 1)
        let ourSSRC = try await h.onLoop { $0.ssrc }

        // Our next report: an SR (we send RTP) with a block about the peer's stream echoing its SR.
        let report = try await Self.nextReport(rtcpPeer.inbox) { $0.blockAboutUs?.lastSenderReport ?? 0 != 0 }
        let heldFor = ContinuousClock.now - peerSRSent
        #expect(report.senderSSRC == ourSSRC)
        let info = try #require(report.senderInfo)
        #expect(info.packetCount > 0)
        let block = try #require(report.blockAboutUs)
        #expect(block.ssrc == Self.peerSSRC)
        #expect(block.lastSenderReport == UInt32(truncatingIfNeeded: peerNTP >> 16))
        #expect(block.cumulativeLost == 0 && block.extendedHighestSequence == 4)
        let dlsrMilliseconds = Double(block.delaySinceLastSenderReport) * 1000 / 65536
        #expect(dlsrMilliseconds >= 0 && dlsrMilliseconds <= Double(heldFor.components.attoseconds) / 1e15 + Double(heldFor.components.seconds) * 1000 + 1)

        // The peer reports on us at once (DLSR 0): the round trip is the time since our SR, a few ms here.
        let aboutUs = RTCPReportBlock(
            ssrc: ourSSRC, fractionLost: 26, cumulativeLost: 3, extendedHighestSequence: 100, jitter: 40,
            lastSenderReport: info.compactNTP, delaySinceLastSenderReport: 0)
        try await rtcpPeer.send(Self.senderReport(ntp: RTCPReporter.ntpNow(), block: aboutUs), to: h.localPort + 1)
        var figures = try await h.onLoop { $0.statistics.rtcp }
        while figures.reportsReceived < 2 {
            _ = try await rtcpPeer.inbox.next()
            figures = try await h.onLoop { $0.statistics.rtcp }
        }
        let rtt = try #require(figures.roundTripLastMilliseconds)
        // It cannot exceed the time since the session stamped its SR (NTP clock, 1/65536 s units).
        let sinceOurSR = Double(UInt32(truncatingIfNeeded: RTCPReporter.ntpNow() >> 16) &- info.compactNTP) * 1000 / 65536
        #expect(rtt >= 0 && rtt <= sinceOurSR + 0.1, "round trip \(rtt) ms, \(sinceOurSR) ms since our SR")
        #expect(figures.roundTripMinMilliseconds == rtt && figures.roundTripMaxMilliseconds == rtt)
        #expect(figures.peerPacketsLost == 3 && figures.peerJitterMilliseconds == 5)
        #expect(abs((figures.peerFractionLost ?? 0) - 26.0 / 256) < 0.001)

        // Leaving: a last report with BYE.
        _ = try await h.loop.flatSubmit { [session = h.session] in session.value.close() }.get()
        _ = try await Self.nextReport(rtcpPeer.inbox) { $0.bye }
    }

    @Test func multiplexedRTCPSharesTheRTPPort() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(
            remote: h.peer.address, telephoneEvent: nil,
            rtcp: RTCPOptions(multiplexed: true, interval: .milliseconds(100), randomised: false))
        try await Self.sendAudio(h, count: 3)
        try await h.peer.send(Self.senderReport(ntp: RTCPReporter.ntpNow()), to: h.localPort)
        let report = try await Self.nextReport(h.peer.inbox) { $0.blockAboutUs?.lastSenderReport ?? 0 != 0 }
        #expect(report.blockAboutUs?.ssrc == Self.peerSSRC)
        let stats = try await h.onLoop { $0.statistics }
        #expect(stats.rtcp.reportsReceived == 1)
        // The RTCP datagram was not taken for RTP.
        #expect(stats.packetsReceived == 3 && stats.packetsIgnored == 0)
    }

    @Test func srtcpProtectsReportsBothWays() async throws {
        let h = try await SessionHarness()
        let rtcpPeer = try await Peer(group: h.group, name: "rtcp peer")
        defer { Task { await rtcpPeer.close(); await h.shutdown() } }
        let ours = SRTPKey.generate(.aesCM128HmacSHA1_80)
        let theirs = SRTPKey.generate(.aesCM128HmacSHA1_80)
        try await h.start(
            remote: h.peer.address, telephoneEvent: nil, srtp: SRTPConfiguration(remote: theirs, local: ours),
            rtcp: RTCPOptions(remote: rtcpPeer.address, interval: .milliseconds(100), randomised: false))
        let peerOut = try SRTPStream(key: theirs, direction: .outbound)
        let peerIn = try SRTPStream(key: ours, direction: .inbound)
        var sr = Self.senderReport(ntp: RTCPReporter.ntpNow())
        let plainLength = sr.count
        sr += [UInt8](repeating: 0, count: SRTPStream.maxRTCPTrailer)
        let protectedLength = try #require(sr.withUnsafeMutableBytes { peerOut.protectRTCP($0.baseAddress!, length: plainLength, capacity: $0.count) })
        try await rtcpPeer.send(Array(sr.prefix(protectedLength)), to: h.localPort + 1)
        // What the session sends is SRTCP: it reads as RTCP only once unprotected with its key.
        var unprotected: RTCPReport?
        while unprotected == nil {
            var datagram = try await rtcpPeer.inbox.next().bytes
            let length = datagram.count
            datagram += [UInt8](repeating: 0, count: SRTPStream.maxTrailer)
            guard case .ok(let plain) = datagram.withUnsafeMutableBytes({ peerIn.unprotectRTCP($0.baseAddress!, length: length, capacity: $0.count) })
            else { Issue.record("the session's RTCP did not authenticate"); return }
            unprotected = datagram.prefix(plain).withUnsafeBytes { RTCPPacket.parse($0, ourSSRC: Self.peerSSRC) }
        }
        #expect(try await h.onLoop { $0.statistics.rtcp.reportsReceived } == 1)
        // A tampered report is dropped and counted.
        var second = Self.senderReport(ntp: 1) + [UInt8](repeating: 0, count: SRTPStream.maxRTCPTrailer)
        let secondLength = try #require(second.withUnsafeMutableBytes { peerOut.protectRTCP($0.baseAddress!, length: plainLength, capacity: $0.count) })
        second[secondLength - 1] ^= 0x01
        try await rtcpPeer.send(Array(second.prefix(secondLength)), to: h.localPort + 1)
        _ = try await rtcpPeer.inbox.next()
        let stats = try await h.onLoop { $0.statistics }
        #expect(stats.srtpAuthenticationFailures == 1 && stats.rtcp.reportsReceived == 1, "\(stats)")
    }

    @Test func holdStopsOurRTPAndSuspendsTheInactivityTimeout() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        // Held from the start (a call answered on hold), in one turn of the loop, so no tick runs in between.
        let remote = h.peer.address
        try await h.onLoop { session in
            try session.start(remote: remote, codec: .pcmu, telephoneEventPayloadType: nil, inactivityTimeout: .milliseconds(200))
            session.setDirection(sending: false, receiving: false)
        }
        // 600 ms of hold: nothing arrives at the peer, and no timeout though it is silent for three timeouts.
        await #expect(throws: TimedOut.self) { _ = try await h.peer.inbox.next(timeout: .milliseconds(600)) }
        #expect(try await h.onLoop { $0.statistics.packetsSent } == 0)
        #expect(h.delegate.events.drain().isEmpty)
        // Resumed: the stream flows again, and the timeout counts from the resume.
        try await h.onLoop { $0.setDirection(sending: true, receiving: true) }
        _ = try await h.peer.inbox.next()
        #expect(try await h.delegate.events.next() == .timedOut)
    }

    @Test func comfortNoiseFillsThePeersSilenceWithoutCountingLoss() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, telephoneEvent: nil, comfortNoise: 13)
        // 10 packets of speech, a CN packet at -40 dBov (seq 10), 400 ms of nothing but one CN update (seq 11),
        // then speech again (seq 12…21) with timestamps that skipped the silence.
        var stream = (0..<10).map { seq in (slot: seq, bytes: rtpPacket(pt: 0, seq: UInt16(seq), ts: UInt32(seq * 160), payload: Self.silence)) }
        stream.append((10, rtpPacket(pt: 13, seq: 10, ts: 1600, payload: [40])))
        stream.append((20, rtpPacket(pt: 13, seq: 11, ts: 3200, payload: [40])))
        for (index, seq) in (12..<22).enumerated() {
            stream.append((30 + index, rtpPacket(pt: 0, seq: UInt16(seq), ts: UInt32((30 + index) * 160), payload: Self.silence)))
        }
        try await h.peer.sendPaced(stream, to: h.localPort)
        // Every tick from the first frame on reaches the delegate, the gap as noise: 36 frames take it well into
        // the second talk spurt.
        var frames: [[Int16]] = []
        while frames.count < 36 {
            let event: SessionEvent
            do { event = try await h.delegate.events.next(timeout: .seconds(2)) } catch {
                let stats = try await h.onLoop { $0.statistics }
                Issue.record("only \(frames.count) frames: \(frames.map { $0.map { abs(Int($0)) }.max()! }) \(stats)")
                return
            }
            guard case .audio(let samples) = event else { continue }
            frames.append(samples)
        }
        let noisy = frames.filter { frame in frame.contains { abs(Int($0)) > 16 } }
        #expect(noisy.count >= 15, "the silence between the talk spurts is comfort noise")
        #expect(noisy.allSatisfy { frame in frame.allSatisfy { abs(Int($0)) < 3000 } }, "at the CN level, not speech")
        let stats = try await h.onLoop { $0.statistics }
        #expect(stats.comfortNoisePackets == 2)
        #expect(stats.packetsLost == 0 && stats.packetsConcealed == 0 && stats.packetsLate == 0)
    }

    @Test func opusDTXGapsAreFilledAndNotCountedAsUnderruns() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, codec: .opus(payloadType: 111), telephoneEvent: nil)
        let encoder = try OpusFrameEncoder(sampleRate: 8000, peer: OpusParameters(), frameSamples: 160)
        let tone = ToneAnalysis.tone(frequency: 440, sampleRate: 8000, count: 160 * 10)
        var packet = [UInt8](repeating: 0, count: 1500)
        // 10 frames of tone, a DTX frame (a TOC byte alone, seq 10), 300 ms of nothing, then 10 frames again with
        // timestamps that skipped the silence: the sequence numbers have no gap.
        var stream: [(slot: Int, bytes: [UInt8])] = []
        for slot in 0..<36 where slot < 11 || slot >= 26 {
            let seq = slot < 11 ? slot : slot - 15
            let payload: [UInt8]
            if slot == 10 {
                payload = [0x08]
            } else {
                let frame = slot % 10
                let n = try #require(tone[(frame * 160)..<((frame + 1) * 160)].withUnsafeBufferPointer { pcm in
                    packet.withUnsafeMutableBytes { encoder.encode(pcm, into: $0) }
                })
                payload = Array(packet[0..<n])
            }
            stream.append((slot, rtpPacket(pt: 111, seq: UInt16(seq), ts: UInt32(960 * slot), payload: payload)))
        }
        try await h.peer.sendPaced(stream, to: h.localPort)
        // Frames keep coming through the silence: about 36 in all, where the 21 packets alone would give 21 (a loaded
        // machine's bursts may cost a few).
        var frames = 0
        while frames < 28 {
            if case .audio = try await h.delegate.events.next(timeout: .seconds(2)) { frames += 1 }
        }
        let stats = try await h.onLoop { $0.statistics }
        #expect(stats.packetsConcealed == 0 && stats.packetsLost == 0)
    }
}
