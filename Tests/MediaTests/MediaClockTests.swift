import Logging
import NIOCore
import NIOPosix
import Testing
import TrunklineTestSupport
@testable import Media

final class WeakClock: @unchecked Sendable {
    weak var clock: MediaClock?
}

/// The loop's shared pacing clock: sessions started at any moment send on its grid (20 ms, in eight phases 2.5 ms
/// apart, spread evenly), and the clock keeps its lists right as sessions come and go.
@Suite("Media clock")
struct MediaClockTests {
    @Test func sessionsOnOneLoopShareOneGridAndTheClockGoesWithTheLastOfThem() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let peer = try await Peer(group: group)
        let pool = RTPPortPool(range: try FreePort.udpRange(count: 10))
        var sessions: [NIOLoopBound<RTPSession>] = []
        for _ in 0..<3 {
            sessions.append(try await RTPSession.open(host: "127.0.0.1", portPool: pool, eventLoop: loop, logger: Logger(label: "t"))
                .map { NIOLoopBound($0, eventLoop: loop) }.get())
        }
        let remote = peer.address
        try await loop.submit { [sessions] in
            let clock = MediaClock.on(loop)
            for (n, session) in sessions.enumerated() {
                // Starts 7 ms apart (a busy loop, not a sleep): off any 20 ms grid but the clock's.
                let end = NIODeadline.now() + .milliseconds(Int64(7 * n))
                while NIODeadline.now() < end {}
                try session.value.start(remote: remote, codec: .pcmu, telephoneEventPayloadType: nil)
            }
            #expect(clock.sessionCount == 3)
            #expect(Set(sessions.map(\.value.clockPhase)).count == 3, "three sessions take three phases")
            let first = sessions[0].value.nextDeadline.uptimeNanoseconds
            for session in sessions.dropFirst() {
                let offset = Int64(session.value.nextDeadline.uptimeNanoseconds) - Int64(first)
                #expect(offset % MediaClock.phaseInterval.nanoseconds == 0, "a session started off the clock's phases: \(offset) ns")
            }
        }.get()
        // Packets flow from all three.
        for _ in 0..<6 { _ = try await peer.inbox.next() }

        try await loop.flatSubmit { [sessions] in sessions[1].value.close() }.get()
        try await loop.submit { [sessions] in
            let clock = MediaClock.on(loop)
            #expect(clock.sessionCount == 2)
            #expect(sessions[0].value.clockSlot == 0 && sessions[2].value.clockSlot == 0, "alone in their phases")
            #expect(sessions[1].value.clockSlot == -1)
        }.get()
        let running = WeakClock()
        try await loop.submit { running.clock = MediaClock.on(loop) }.get()
        try await loop.flatSubmit { [sessions] in sessions[0].value.close().and(sessions[2].value.close()).map { _ in } }.get()
        // The last session gone, the clock (and its timer) went with it.
        #expect(try await loop.submit { running.clock == nil }.get())
        await peer.close()
        try await group.shutdownGracefully()
    }
}
