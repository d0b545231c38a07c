import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
@testable import Media

/// The jitter buffer inside a real `RTPSession`: a peer on loopback UDP sends a paced stream with loss,
/// a duplicate, a swap and a late packet; the delegate must get one frame per 20 ms tick and the statistics
/// must name what happened.
@Suite struct JitterSessionTests {
    /// Records when each frame reached the delegate (on the session's loop).
    final class TimingDelegate: RTPSessionDelegate, Sendable {
        let frames = Inbox<ContinuousClock.Instant>("audio frame")
        func rtpSession(_ session: RTPSession, receivedAudio samples: UnsafeBufferPointer<Int16>) { frames.put(.now) }
        func rtpSession(_ session: RTPSession, receivedDigit digit: DTMFDigit) {}
        func rtpSession(_ session: RTPSession, playedMark id: Int) {}
        func rtpSessionTimedOut(_ session: RTPSession) {}
    }

    @Test func anImpairedStreamComesOutAsAnEvenCadenceAndItsLossesAreCounted() async throws {
        let h = try await SessionHarness()
        defer { Task { await h.shutdown() } }
        let timing = TimingDelegate()
        try await h.onLoop { $0.delegate = timing }
        try await h.start(remote: h.peer.address, telephoneEvent: nil)

        let dropped: Set<UInt16> = [10, 30, 31]
        // Send slot → sequence numbers sent in it: 20 and 21 swapped, 15 twice, 40 held back 120 ms.
        var schedule: [[UInt16]] = (0..<60).map { dropped.contains(UInt16($0)) || $0 == 40 ? [] : [UInt16($0)] }
        schedule[15] = [15, 15]
        schedule[20] = [21]
        schedule[21] = [20]
        schedule[46].append(40)
        let payload = [UInt8](repeating: 0x55, count: 160)
        let stream = schedule.enumerated().flatMap { slot, sequences in
            sequences.map { seq in (slot, rtpPacket(pt: 0, seq: seq, ts: UInt32(seq) * 160, payload: payload)) }
        }
        try await h.peer.sendPaced(stream, to: h.localPort)
        // Every slot 0…59 yields one frame: 55 packets played, 10, 30, 31 and the late 40 concealed.
        var arrivals: [ContinuousClock.Instant] = []
        for _ in 0..<60 { arrivals.append(try await timing.frames.next()) }
        let gaps = zip(arrivals, arrivals.dropFirst()).map { $1 - $0 }
        let bunched = gaps.filter { $0 < .milliseconds(10) }.count
        #expect(bunched <= 2, "frames should come one per 20 ms tick; \(bunched) came within 10 ms of the previous")
        #expect(arrivals[59] - arrivals[0] >= .milliseconds(59 * 20 - 40))

        let stats = try await h.onLoop { $0.statistics }
        #expect(stats.packetsConcealed == 4)
        #expect(stats.packetsLate == 1)
        #expect(stats.packetsDuplicated == 1)
        // RFC 3550's cumulative loss counts the duplicate as received: 3 dropped − 1 duplicate.
        #expect(stats.packetsLost == 2)
        #expect(stats.jitterMilliseconds > 0)
    }
}
