import NIOCore
import NIOPosix

/// One 20 ms pacing timer per event loop for every RTP session on it.
///
/// A timer per session woke the loop once per call per packet and kept NIO's timer heap as long as the call list
/// (re-sorting it, retaining and releasing as it went, was the largest item after the kernel in a profile of 150
/// calls). Here one wakeup runs every session on the loop; each session still keeps its own deadline and catches
/// up on packets the loop was late for, so pacing and timestamps are as before. Every deadline stays on the
/// clock's 20 ms grid: a session joins on the next tick and, when it gives up catching up, restarts on one.
///
/// Thread contract: a clock belongs to one event loop and is used only on it (`on(_:)` finds it in a table of the
/// calling thread's). It exists while sessions use it: the last one leaving stops the timer and drops the clock.
final class MediaClock {
    /// The clocks of the loops this thread runs (one, except for test loops that share a thread).
    private final class Clocks {
        var byLoop: [ObjectIdentifier: MediaClock] = [:]
    }
    nonisolated(unsafe) private static let perThread = ThreadSpecificVariable<Clocks>()

    private static var clocks: Clocks {
        if let clocks = perThread.currentValue { return clocks }
        let clocks = Clocks()
        perThread.currentValue = clocks
        return clocks
    }

    /// `loop`'s clock, made on first use; call on `loop`.
    static func on(_ loop: any EventLoop) -> MediaClock {
        let key = ObjectIdentifier(loop as AnyObject)
        if let clock = clocks.byLoop[key] { return clock }
        let clock = MediaClock(loop: loop)
        clocks.byLoop[key] = clock
        return clock
    }

    private let loop: any EventLoop
    /// Sessions in no particular order; each knows its index (`clockSlot`) so leaving is O(1).
    private var sessions: [RTPSession] = []
    private var timer: NIOScheduledCallback?
    private var nextTick = NIODeadline.now()

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    var sessionCount: Int { sessions.count }

    /// Adds `session` to the ticks; returns the deadline of its first tick.
    func join(_ session: RTPSession) -> NIODeadline {
        loop.assertInEventLoop()
        session.clockSlot = sessions.count
        sessions.append(session)
        if timer == nil {
            nextTick = .now()
            schedule()
        }
        return nextTick
    }

    func leave(_ session: RTPSession) {
        loop.assertInEventLoop()
        let slot = session.clockSlot
        guard slot >= 0, slot < sessions.count, sessions[slot] === session else { return }
        let last = sessions.removeLast()
        if slot < sessions.count {
            sessions[slot] = last
            last.clockSlot = slot
        }
        session.clockSlot = -1
        if sessions.isEmpty {
            timer?.cancel()
            timer = nil
            Self.clocks.byLoop[ObjectIdentifier(loop as AnyObject)] = nil
        }
    }

    fileprivate func tick() {
        timer = nil
        let now = NIODeadline.now()
        nextTick = nextTick + RTPSession.packetInterval
        // Far behind (a stalled loop): the grid restarts from now, as the sessions restart theirs onto it.
        if nextTick + .milliseconds(200) < now { nextTick = now + RTPSession.packetInterval }
        // A session may leave during its own tick (its call ended): the one moved into its slot runs next.
        var index = 0
        while index < sessions.count {
            let session = sessions[index]
            session.tick(upcoming: nextTick)
            if index < sessions.count, sessions[index] === session { index += 1 }
        }
        if !sessions.isEmpty { schedule() }
    }

    private func schedule() {
        do {
            timer = try loop.assumeIsolated().scheduleCallback(at: nextTick, handler: ClockTimer(clock: self))
        } catch {
            // Only a loop that is shutting down refuses; its sessions are closing with it.
            timer = nil
        }
    }
}

@available(*, unavailable)
extension MediaClock: Sendable {}

/// The clock's callback: NIO's scheduled callbacks do not allocate per run on its own loops.
private struct ClockTimer: NIOScheduledCallbackHandler {
    let clock: MediaClock

    func handleScheduledCallback(eventLoop: some EventLoop) {
        clock.tick()
    }
}
