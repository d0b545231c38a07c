import Testing
@testable import Media

@Suite struct JitterBufferTests {
    /// 20 ms in nanoseconds, and in 8 kHz timestamp units.
    static let tick: Int64 = 20_000_000

    /// Inserts packet `seq` (payload: its sequence number) arriving at `ms`.
    @discardableResult
    func put(_ buffer: inout JitterBuffer, _ seq: UInt16, at ms: Int64? = nil) -> JitterBuffer.Insertion {
        let payload: [UInt8] = [UInt8(truncatingIfNeeded: seq), UInt8(truncatingIfNeeded: seq >> 8)]
        let arrival = (ms ?? Int64(seq) * 20) * 1_000_000
        return payload.withUnsafeBytes {
            buffer.insert(sequence: seq, timestamp: UInt32(seq) * 160, arrivalNanoseconds: arrival, payload: $0)
        }
    }

    /// One tick: the sequence number played, "lost", "empty" or "buffering".
    func pop(_ buffer: inout JitterBuffer) -> String {
        switch buffer.pop() {
        case .buffering: return "buffering"
        case .lost: return "lost"
        case .empty: return "empty"
        case .packet(let slot, let length):
            return buffer.withPayload(slot: slot, length: length) { "\(Int($0[0]) | Int($0[1]) << 8)" }
        }
    }

    @Test func reordersDropsDuplicatesAndLatePacketsAndConcealsGaps() {
        var buffer = JitterBuffer(minDepth: 3, maxDepth: 10, clockRate: 8000)
        #expect(pop(&buffer) == "buffering")
        for seq: UInt16 in [10, 12, 11] { put(&buffer, seq, at: 200) }
        #expect(put(&buffer, 11, at: 200) == .duplicate)
        #expect(pop(&buffer) == "10")
        #expect(pop(&buffer) == "11")
        put(&buffer, 14, at: 260)
        #expect(pop(&buffer) == "12")
        #expect(pop(&buffer) == "lost")  // 13 never came, 14 is waiting
        #expect(put(&buffer, 13, at: 300) == .late)
        #expect(pop(&buffer) == "14")
        #expect(pop(&buffer) == "empty")
        #expect(buffer.counters == .init(late: 1, duplicates: 1, lost: 1, discarded: 0, underruns: 1))
    }

    @Test func anEarlierFirstPacketMovesTheStartBack() {
        var buffer = JitterBuffer(minDepth: 2, maxDepth: 10, clockRate: 8000)
        put(&buffer, 6)
        put(&buffer, 5)
        #expect(pop(&buffer) == "5")
        #expect(pop(&buffer) == "6")
    }

    @Test func steadyArrivalsKeepTheMinimumDepthAndJitterRaisesItWithinTheBounds() {
        var steady = JitterBuffer(minDepth: 2, maxDepth: 8, clockRate: 8000)
        for seq: UInt16 in 0..<50 {
            put(&steady, seq)
            _ = pop(&steady)
        }
        #expect(steady.jitter == 0 && steady.targetDepth == 2)

        var jittery = JitterBuffer(minDepth: 2, maxDepth: 8, clockRate: 8000)
        for seq: UInt16 in 0..<200 {
            // Every other packet 30 ms late: D = 240 units each time, so J converges on 240 (30 ms).
            put(&jittery, seq, at: Int64(seq) * 20 + (seq % 2 == 0 ? 0 : 30))
        }
        _ = pop(&jittery)
        #expect(abs(jittery.jitterMilliseconds - 30) < 1)
        #expect(jittery.targetDepth == 2 + 3)  // 2 jitters = 60 ms = 3 packets

        var wild = JitterBuffer(minDepth: 2, maxDepth: 4, clockRate: 8000)
        for seq: UInt16 in 0..<100 { put(&wild, seq, at: Int64(seq) * 20 + (seq % 2 == 0 ? 0 : 200)) }
        _ = pop(&wild)
        #expect(wild.targetDepth == 4)
    }

    @Test func excessDepthIsShedGradually() {
        var buffer = JitterBuffer(minDepth: 2, maxDepth: 8, clockRate: 8000)
        for seq: UInt16 in 0..<20 { put(&buffer, seq, at: Int64(seq) * 20) }
        // 20 buffered, target 2: one packet dropped every 5 ticks while above target + 2.
        var played: [String] = []
        for _ in 0..<12 { played.append(pop(&buffer)) }
        #expect(played == ["0", "1", "2", "3", "5", "6", "7", "8", "9", "11", "12", "13"])
        #expect(buffer.counters.discarded == 2)
    }

    @Test func skippedNumbersPassSilentlyAndAreNotLosses() {
        var buffer = JitterBuffer(minDepth: 1, maxDepth: 4, clockRate: 8000)
        put(&buffer, 1)
        #expect(pop(&buffer) == "1")
        for seq: UInt16 in 2...4 { buffer.skip(sequence: seq) }  // e.g. telephone-events
        put(&buffer, 6)
        #expect(pop(&buffer) == "lost")  // 2…4 pass, 5 is missing
        #expect(pop(&buffer) == "6")
        #expect(buffer.counters.lost == 1)
    }

    @Test func theSilenceAComfortNoisePacketAnnouncesIsNotAnUnderrun() {
        var buffer = JitterBuffer(minDepth: 1, maxDepth: 4, clockRate: 8000)
        put(&buffer, 1)
        put(&buffer, 2)
        buffer.skip(sequence: 3, announcesSilence: true)
        #expect(pop(&buffer) == "1" && pop(&buffer) == "2")
        #expect(!buffer.peerSilent, "the silence starts at the CN packet's turn, not at its arrival")
        #expect(pop(&buffer) == "buffering")
        #expect(buffer.peerSilent)
        // Running dry through the silence: neither an underrun nor a deeper target.
        for _ in 0..<10 { #expect(["empty", "buffering"].contains(pop(&buffer))) }
        #expect(buffer.counters.underruns == 0 && buffer.counters.lost == 0 && buffer.targetDepth == 1)
        // Speech again: the silence is over once audio plays, and a later dry spell is an underrun.
        put(&buffer, 4, at: 500)
        #expect(pop(&buffer) == "4")
        #expect(!buffer.peerSilent)
        #expect(pop(&buffer) == "empty")
        #expect(buffer.counters.underruns == 1)
    }

    @Test func aSequenceJumpBeyondTheWindowRestartsTheBuffer() {
        var buffer = JitterBuffer(minDepth: 1, maxDepth: 4, clockRate: 8000)
        put(&buffer, 100)
        #expect(pop(&buffer) == "100")
        put(&buffer, 30000)
        #expect(pop(&buffer) == "30000")
    }

    @Test func aPayloadBiggerThanTheFirstSlotsGrowsThemAndKeepsWhatIsBuffered() {
        var buffer = JitterBuffer(minDepth: 3, maxDepth: 4, clockRate: 8000)
        #expect(buffer.slotBytes == JitterBuffer.initialSlotBytes)
        put(&buffer, 1)
        put(&buffer, 2)
        // 120 ms of G.711: more than a first slot holds.
        let big = (0..<960).map { UInt8(truncatingIfNeeded: $0) }
        #expect(big.withUnsafeBytes { buffer.insert(sequence: 3, timestamp: 480, arrivalNanoseconds: 60_000_000, payload: $0) } == .stored)
        #expect(buffer.slotBytes == JitterBuffer.maxPayload)
        #expect(pop(&buffer) == "1")
        #expect(pop(&buffer) == "2")
        guard case .packet(let slot, let length) = buffer.pop() else {
            Issue.record("the big packet is not next")
            return
        }
        #expect(buffer.withPayload(slot: slot, length: length) { Array($0) } == big)
    }

    @Test func malformedPayloadsAreRejected() {
        var buffer = JitterBuffer(minDepth: 1, maxDepth: 4, clockRate: 8000)
        let big = [UInt8](repeating: 0, count: JitterBuffer.maxPayload + 1)
        #expect(big.withUnsafeBytes { buffer.insert(sequence: 1, timestamp: 0, arrivalNanoseconds: 0, payload: $0) } == .rejected)
        #expect([UInt8]().withUnsafeBytes { buffer.insert(sequence: 1, timestamp: 0, arrivalNanoseconds: 0, payload: $0) } == .rejected)
    }
}
