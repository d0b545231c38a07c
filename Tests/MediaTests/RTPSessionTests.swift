import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
import TrunklineTestSupport
@testable import Media

/// End-to-end tests of `RTPSession` over real UDP sockets on 127.0.0.1. Each test has its own port range.
@Suite struct RTPSessionTests {
    /// Receives `count` datagrams at `peer`.
    private func packets(_ count: Int, at peer: Peer) async throws -> [Datagram] {
        var out: [Datagram] = []
        for _ in 0..<count { out.append(try await peer.inbox.next()) }
        return out
    }

    @Test func sendsAContinuousPacedStreamOfSilence() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        #expect(h.localPort % 2 == 0 && h.pool.ports.contains(h.localPort))
        try await h.start(remote: h.peer.address)
        let received = try await packets(11, at: h.peer)
        let first = try #require(received[0].header)
        for (i, datagram) in received.enumerated() {
            #expect(datagram.bytes.count == 172)
            #expect(datagram.from.port == h.localPort)
            let header = try #require(datagram.header)
            #expect(header.version == 2 && header.payloadType == 0 && header.csrcCount == 0)
            #expect(header.sequenceNumber == first.sequenceNumber &+ UInt16(i))
            #expect(header.timestamp == first.timestamp &+ UInt32(160 * i))
            #expect(header.ssrc == first.ssrc)
            #expect(header.marker == (i == 0))
            #expect(datagram.payload == [UInt8](repeating: 0xFF, count: 160))
        }
        let stats = try await h.onLoop { $0.statistics }
        #expect(stats.packetsSent >= 11)
        #expect(stats.bytesSent == stats.packetsSent * 160)
    }

    @Test func pacesAt20Milliseconds() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        let start = ContinuousClock.now
        try await h.start(remote: h.peer.address)
        _ = try await packets(11, at: h.peer)
        // Deadlines are absolute (packet n is due at start + n × 20 ms), so however late the loop runs,
        // packet 10 never leaves before 200 ms have passed.
        #expect(ContinuousClock.now - start >= .milliseconds(200))
    }

    @Test func aLateLoopCatchesUpWithoutSkippingTimestampsThenRestartsItsClock() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        let peer = h.peer.address
        // Start, then keep the loop busy for 300 ms (a busy loop, not a sleep): 16 packets fall due at once.
        try await h.onLoop { session in
            try session.start(remote: peer, codec: .pcmu, telephoneEventPayloadType: nil)
            let end = NIODeadline.now() + .milliseconds(300)
            while NIODeadline.now() < end {}
        }
        var received: [Datagram] = []
        for _ in 0..<14 { received.append(try await h.peer.inbox.next()) }
        let arrivals = received.map(\.arrival)
        let first = try #require(received[0].header)
        for (i, datagram) in received.enumerated() {
            #expect(datagram.header?.sequenceNumber == first.sequenceNumber &+ UInt16(i))
            #expect(datagram.header?.timestamp == first.timestamp &+ UInt32(160 * i))
        }
        // The 10 due packets went out in one burst (paced, they would span 180 ms)...
        #expect(arrivals[RTPSession.maxCatchUpPackets - 1] - arrivals[0] < .milliseconds(120))
        // ...then the clock restarted instead of bursting on.
        #expect(arrivals[13] - arrivals[RTPSession.maxCatchUpPackets - 1] >= .milliseconds(60))
        #expect(try await h.onLoop { $0.statistics.senderClockResets } == 1)
    }

    @Test func aLawStreamUsesItsPayloadTypeAndSilence() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, codec: .pcma)
        let datagram = try await h.peer.inbox.next()
        #expect(datagram.header?.payloadType == 8)
        #expect(datagram.payload == [UInt8](repeating: 0xD5, count: 160))
    }

    @Test func enqueuedAudioGoesOutInOrderThenSilenceAndMarksFireAfterTheirAudio() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        // 400 samples: packets 1 and 2 full, packet 3 half audio, half silence.
        let audio = (0..<400).map { Int16(truncatingIfNeeded: ($0 * 97) % 16000 - 8000) }
        try await h.onLoop { session in
            session.enqueueMark(1)  // nothing before it: fires after the first packet
            audio.withUnsafeBufferPointer { session.enqueue($0) }
            session.enqueueMark(2)
            #expect(session.bufferedSamples == 400)
        }
        try await h.start(remote: h.peer.address)
        let received = try await packets(4, at: h.peer)
        let sent = received.flatMap(\.payload)
        let expected = G711Law.muLaw.encoded(audio) + [UInt8](repeating: 0xFF, count: 240)
        #expect(sent == expected)
        #expect(try await h.delegate.events.next() == .mark(1, packetsSent: 1))
        #expect(try await h.delegate.events.next() == .mark(2, packetsSent: 3))
        // A mark enqueued with nothing pending fires on the next tick.
        let before = try await h.onLoop { session -> Int in
            session.enqueueMark(3)
            return session.statistics.packetsSent
        }
        guard case .mark(3, let at) = try await h.delegate.events.next() else {
            Issue.record("expected mark 3")
            return
        }
        #expect(at == before + 1)
    }

    @Test func clearPlayoutDropsAudioAndFiresMarksAtOnce() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        let tone = [Int16](repeating: 4000, count: 8000)
        try await h.onLoop { session in
            tone.withUnsafeBufferPointer { session.enqueue($0) }
            session.enqueueMark(10)
            tone.withUnsafeBufferPointer { session.enqueue($0) }
            session.enqueueMark(11)
        }
        try await h.start(remote: h.peer.address)
        let toneCodes = G711Law.muLaw.encoded([4000])[0]
        #expect(try await h.peer.inbox.next().payload == [UInt8](repeating: toneCodes, count: 160))
        let (buffered, marks) = try await h.onLoop { session -> (Int, [SessionEvent]) in
            session.clearPlayout()
            return (session.bufferedSamples, h.delegate.events.drain())
        }
        #expect(buffered == 0)
        #expect(marks.count == 2)
        if marks.count == 2 {
            guard case .mark(10, let sentAt10) = marks[0], case .mark(11, _) = marks[1] else {
                Issue.record("marks out of order: \(marks)")
                return
            }
            #expect(sentAt10 < 50)  // long before 1 s of audio could have been sent
        }
        // Whatever was in flight, the stream turns to silence and stays there.
        var sawSilence = false
        for _ in 0..<8 {
            let payload = try await h.peer.inbox.next().payload
            if payload == [UInt8](repeating: 0xFF, count: 160) {
                sawSilence = true
            } else {
                #expect(!sawSilence, "audio after silence: clearPlayout did not drop it")
            }
        }
        #expect(sawSilence)
    }

    @Test func latchesToThePeersActualSourceAndRelatchesWhenItMoves() async throws {
        let h = try await SessionHarness()
        let decoy = try await Peer(group: h.group, name: "decoy")
        let mover = try await Peer(group: h.group, name: "moved peer")
        defer { Task { await decoy.close(); await mover.close(); await h.shutdown() } }
        // SDP says the decoy; the peer really sends from another port.
        try await h.start(remote: decoy.address)
        _ = try await decoy.inbox.next()
        let silence = [UInt8](repeating: 0xFF, count: 160)
        try await h.peer.send(rtpPacket(pt: 0, seq: 1, ts: 0, payload: silence), to: h.localPort)
        let latched = try await h.peer.inbox.next()
        #expect(latched.header?.payloadType == 0)
        #expect(try await h.onLoop { $0.sendingTo?.port } == h.peer.port)

        // One stray packet from elsewhere does not move the stream...
        try await mover.send(rtpPacket(pt: 0, seq: 2, ts: 160, payload: silence), to: h.localPort)
        try await h.peer.send(rtpPacket(pt: 0, seq: 3, ts: 320, payload: silence), to: h.localPort)
        _ = try await h.delegate.events.next()
        _ = try await h.delegate.events.next()
        _ = try await h.delegate.events.next()
        #expect(try await h.onLoop { $0.sendingTo?.port } == h.peer.port)
        // ...but a source that keeps sending does.
        for i in 0..<RTPSession.relatchPackets {
            try await mover.send(rtpPacket(pt: 0, seq: UInt16(4 + i), ts: UInt32(480 + 160 * i), payload: silence), to: h.localPort)
        }
        _ = try await mover.inbox.next()
        #expect(try await h.onLoop { $0.sendingTo?.port } == mover.port)
    }

    @Test func deliversAudioAndDigitsAndCountsTheRest() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, telephoneEvent: 101)
        let port = h.localPort
        let pcm = (0..<160).map { Int16(truncatingIfNeeded: $0 * 200 - 16000) }
        let codes = G711Law.muLaw.encoded(pcm)
        try await h.peer.send(rtpPacket(pt: 0, seq: 10, ts: 0, marker: true, payload: codes), to: port)
        #expect(try await h.delegate.events.next() == .audio(G711Law.muLaw.decoded(codes)))

        // One press of "7": start, continuation, three ends; then a second press of "7", end packets only.
        try await h.peer.send(rtpPacket(pt: 101, seq: 11, ts: 160, marker: true, payload: eventPayload(7, end: false, duration: 160)), to: port)
        try await h.peer.send(rtpPacket(pt: 101, seq: 12, ts: 160, payload: eventPayload(7, end: false, duration: 320)), to: port)
        for seq: UInt16 in 13...15 {
            try await h.peer.send(rtpPacket(pt: 101, seq: seq, ts: 160, payload: eventPayload(7, end: true, duration: 480)), to: port)
        }
        for seq: UInt16 in 16...18 {
            try await h.peer.send(rtpPacket(pt: 101, seq: seq, ts: 1000, payload: eventPayload(7, end: true, duration: 800)), to: port)
        }
        // Ignored: unknown payload type, not RTP at all.
        try await h.peer.send(rtpPacket(pt: 18, seq: 19, ts: 2000, payload: [1, 2, 3]), to: port)
        try await h.peer.send([0x01, 0x02, 0x03], to: port)
        // A sequence gap: 20, 21 lost.
        try await h.peer.send(rtpPacket(pt: 0, seq: 22, ts: 2160, payload: codes), to: port)

        // Digits come as they arrive; audio on the 20 ms ticks: the events' and the ignored packet's sequence
        // numbers pass silently, lost 20 and 21 are concealed, then 22 plays.
        var digits: [SessionEvent] = []
        var frames: [[Int16]] = []
        while digits.count < 2 || frames.count < 3 {
            switch try await h.delegate.events.next() {
            case .digit(let digit): digits.append(.digit(digit))
            case .audio(let samples): frames.append(samples)
            default: continue
            }
        }
        #expect(digits == [.digit(DTMFDigit(character: "7", durationMs: 20)), .digit(DTMFDigit(character: "7", durationMs: 100))])
        // After a concealed gap the PLC blends into the first real frame; its second half is the packet as sent.
        #expect(frames[2].suffix(80) == G711Law.muLaw.decoded(codes).suffix(80))
        let stats = try await h.onLoop { $0.statistics }
        #expect(stats.packetsConcealed == 2)
        #expect(stats.packetsReceived == 10)
        #expect(stats.bytesReceived == 160 * 2 + 4 * 8)
        #expect(stats.telephoneEvents == 2)
        #expect(stats.packetsIgnored == 2)
        // Seq 19 (the ignored PT 18 packet) and 20, 21 never reached the stream.
        #expect(stats.packetsLost == 3)
    }

    @Test func thirtyMillisecondPacketsReachTheDelegateAsTwentyMillisecondFrames() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, telephoneEvent: nil)
        let pcm = (0..<480).map { Int16(truncatingIfNeeded: $0 * 61 - 14000) }
        let codes = G711Law.muLaw.encoded(pcm)
        // Two 30 ms packets (240 samples each) make exactly three 20 ms frames, in order.
        try await h.peer.send(rtpPacket(pt: 0, seq: 1, ts: 0, marker: true, payload: Array(codes[0..<240])), to: h.localPort)
        try await h.peer.send(rtpPacket(pt: 0, seq: 2, ts: 240, payload: Array(codes[240..<480])), to: h.localPort)
        for frame in 0..<3 {
            let expected = G711Law.muLaw.decoded(Array(codes[(frame * 160)..<((frame + 1) * 160)]))
            #expect(try await h.delegate.events.next() == .audio(expected), "frame \(frame)")
        }
    }

    @Test func sendDigitsGoesOutAsTelephoneEventsInTheStream() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, telephoneEvent: 101)
        try await h.onLoop { try $0.sendDigits("7") }
        // Audio until the digit starts, then 7 event packets in sequence with the stream's SSRC, then audio again.
        var received = try await packets(40, at: h.peer)
        let firstEvent = try #require(received.firstIndex { $0.header?.payloadType == 101 })
        received = Array(received[firstEvent...])
        let events = received.prefix(7)
        #expect(events.allSatisfy { $0.header?.payloadType == 101 && $0.bytes.count == 16 })
        #expect(Set(events.compactMap { $0.header?.timestamp }).count == 1)
        #expect(events.first?.header?.marker == true)
        #expect(events.map { $0.payload[0] } == Array(repeating: 7, count: 7))
        #expect(events.map { $0.payload[1] & 0x80 != 0 } == [false, false, false, false, true, true, true])
        #expect(received[7].header?.payloadType == 0)
        let sequences = received.compactMap { $0.header?.sequenceNumber }
        #expect(zip(sequences, sequences.dropFirst()).allSatisfy { $1 == $0 &+ 1 })
        await #expect(throws: RFC4733Sender.QueueError.invalidDigit("x")) { try await h.onLoop { try $0.sendDigits("7x") } }
    }

    @Test func inBandTonesAreDetectedWhenTheCallHasNoTelephoneEvent() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, telephoneEvent: nil)
        // "4" then "#": 100 ms of each key's two tones (ITU-T Q.23), 100 ms of silence after each, as μ-law RTP.
        let keys: [(low: Double, high: Double)] = [(770, 1209), (941, 1477)]
        var pcm: [Int16] = []
        for key in keys {
            pcm += (0..<800).map { i in
                let t = Double(i) / 8000
                return Int16(6000 * sin(2 * .pi * key.low * t) + 6000 * sin(2 * .pi * key.high * t))
            }
            pcm += [Int16](repeating: 0, count: 800)
        }
        let codes = G711Law.muLaw.encoded(pcm)
        try await h.peer.sendPaced(
            (0..<(codes.count / 160)).map { packet in
                (packet, rtpPacket(pt: 0, seq: UInt16(packet), ts: UInt32(packet * 160), payload: Array(codes[(packet * 160)..<((packet + 1) * 160)])))
            },
            to: h.localPort)
        var digits: [Character] = []
        while digits.count < 2 {
            if case .digit(let digit) = try await h.delegate.events.next() { digits.append(digit.character) }
        }
        #expect(digits == ["4", "#"])
    }

    @Test func silenceFromThePeerIsReportedOnceAfterTheInactivityTimeout() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address, telephoneEvent: nil, inactivityTimeout: .milliseconds(300))
        // Packets keep the call alive: no timeout while they flow for 400 ms (longer than the timeout). Each has its
        // own level, so the last one's audio is known.
        let codes = (0..<20).map { seq in [UInt8](repeating: 0x90 + UInt8(seq), count: 160) }
        try await h.peer.sendPaced(
            (0..<20).map { seq in (seq, rtpPacket(pt: 0, seq: UInt16(seq), ts: UInt32(seq * 160), payload: codes[seq])) },
            to: h.localPort)
        // Then nothing: exactly one timeout, after the last packet's audio.
        var heardLastPacket = false
        while case let event = try await h.delegate.events.next(), event != .timedOut {
            if event == .audio(G711Law.muLaw.decoded(codes[19])) { heardLastPacket = true }
        }
        #expect(heardLastPacket, "the timeout came while packets flowed")
        let sentAfter = try await h.onLoop { $0.statistics.packetsSent }
        _ = h.peer.inbox.drain()
        for _ in 0..<20 { _ = try await h.peer.inbox.next() }
        // The stream itself goes on (a few of those 20 may have been in flight already).
        #expect(try await h.onLoop { $0.statistics.packetsSent } >= sentAfter + 15)
        #expect(h.delegate.events.drain().isEmpty)
    }

    @Test func closeReleasesThePortExactlyOnce() async throws {
        let h = try await SessionHarness(portCount: 4)
        defer { Task { await h.shutdown() } }
        try await h.start(remote: h.peer.address)
        #expect(h.pool.inUseCount == 1)
        try await h.loop.flatSubmit { [session = h.session] in session.value.close() }.get()
        #expect(h.pool.inUseCount == 0)
        // The port is free to bind again, and a second session takes the pool's other port then this one.
        let other = try await RTPSession.open(host: "127.0.0.1", portPool: h.pool, eventLoop: h.loop, logger: Logger(label: "t"))
            .map { NIOLoopBound($0, eventLoop: h.loop) }.get()
        let again = try await RTPSession.open(host: "127.0.0.1", portPool: h.pool, eventLoop: h.loop, logger: Logger(label: "t"))
            .map { NIOLoopBound($0, eventLoop: h.loop) }.get()
        #expect(try await h.loop.submit { again.value.localPort }.get() == h.localPort)
        #expect(h.pool.inUseCount == 2)
        // Closing the first session again must not release the port the new session holds.
        try await h.loop.flatSubmit { [session = h.session] in session.value.close() }.get()
        #expect(h.pool.inUseCount == 2)
        try await h.loop.flatSubmit { other.value.close() }.get()
        try await h.loop.flatSubmit { again.value.close() }.get()
        #expect(h.pool.inUseCount == 0)
    }

    @Test func openSkipsPortsHeldByOtherPrograms() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let ports = try FreePort.udpRange(count: 4)
        let squatter = try await Peer(group: group, port: ports.lowerBound, name: "squatter")
        let pool = RTPPortPool(range: ports)
        let loop = group.next()
        let port = try await RTPSession.open(host: "127.0.0.1", portPool: pool, eventLoop: loop, logger: Logger(label: "t"))
            .flatMap { session in
                let port = session.localPort
                return session.close().map { port }
            }.get()
        #expect(port == ports.lowerBound + 2)
        #expect(pool.inUseCount == 0)
        await squatter.close()
        try await group.shutdownGracefully()
    }

    @Test func openFailsClearlyWhenNoPortCanBeHad() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let heldPorts = try FreePort.udpRange(count: 2)
        let squatter = try await Peer(group: group, port: heldPorts.lowerBound, name: "squatter")
        let loop = group.next()
        let heldPool = RTPPortPool(range: heldPorts)
        await #expect(throws: MediaError(.portsInUse, "")) {
            _ = try await RTPSession.open(host: "127.0.0.1", portPool: heldPool, eventLoop: loop, logger: Logger(label: "t"))
                .flatMap { $0.close() }.get()
        }
        #expect(heldPool.inUseCount == 0)
        let fullPool = RTPPortPool(range: try FreePort.udpRange(count: 2))
        _ = fullPool.allocate()
        await #expect(throws: MediaError(.noFreePort, "")) {
            _ = try await RTPSession.open(host: "127.0.0.1", portPool: fullPool, eventLoop: loop, logger: Logger(label: "t"))
                .flatMap { $0.close() }.get()
        }
        await squatter.close()
        try await group.shutdownGracefully()
    }
}
