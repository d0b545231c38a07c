import Media
import Testing

@Suite("RFC 4733 sender")
struct RFC4733SenderTests {
    /// Runs the sender for `slots` packet slots from timestamp 1000, as the RTP clock would.
    func run(_ sender: inout RFC4733Sender, slots: Int) -> [RFC4733Sender.Slot] {
        (0..<slots).map { sender.next(timestamp: 1000 + UInt32($0 * 160)) }
    }

    @Test func oneDigitIsAGrowingToneThenThreeEndPacketsThenAGap() throws {
        var sender = RFC4733Sender()
        try sender.enqueue("5")
        let slots = run(&sender, slots: 13)
        let events = slots.prefix(7).map { slot -> (TelephoneEvent, UInt32, Bool)? in
            if case .event(let event, let timestamp, let marker) = slot { return (event, timestamp, marker) }
            return nil
        }
        #expect(events.allSatisfy { $0 != nil })
        // All packets of the press carry its start timestamp; the marker only on the first.
        #expect(events.map { $0!.1 } == Array(repeating: 1000, count: 7))
        #expect(events.map { $0!.2 } == [true, false, false, false, false, false, false])
        #expect(events.map { Int($0!.0.duration) } == [160, 320, 480, 640, 800, 800, 800])
        #expect(events.map { $0!.0.isEnd } == [false, false, false, false, true, true, true])
        #expect(events.allSatisfy { $0!.0.event == 5 && $0!.0.volume == 10 })
        // 100 ms of audio between digits, then idle.
        #expect(slots[7...].allSatisfy { $0 == .audio })
        #expect(!sender.isBusy)
    }

    @Test func theNextDigitStartsAtItsOwnTimestampAndPausesWait() throws {
        var sender = RFC4733Sender()
        try sender.enqueue("1w#")
        let slots = run(&sender, slots: 60)
        let starts = slots.enumerated().compactMap { index, slot -> (Int, UInt8)? in
            if case .event(let event, _, true) = slot { return (index, event.event) }
            return nil
        }
        // "1" at slot 0; 7 event + 5 gap slots; "w" = 25 slots of audio; "#" (11) at slot 12 + 25 = 37.
        #expect(starts.map(\.0) == [0, 37])
        #expect(starts.map(\.1) == [1, 11])
        if case .event(_, let timestamp, _) = slots[37] { #expect(timestamp == 1000 + 37 * 160) }
    }

    @Test func whatTheSenderSendsTheReceiverHearsOncePerPress() throws {
        var sender = RFC4733Sender()
        try sender.enqueue("1123#")
        var receiver = RFC4733Receiver()
        var heard: [Character] = []
        var sequence: UInt16 = 0
        for slot in run(&sender, slots: 80) {
            guard case .event(let event, let timestamp, let marker) = slot else { continue }
            var payload = [UInt8](repeating: 0, count: 4)
            payload.withUnsafeMutableBytes { _ = event.write(to: $0) }
            sequence &+= 1
            let header = RTPHeader(marker: marker, payloadType: 101, sequenceNumber: sequence, timestamp: timestamp, ssrc: 1)
            if let digit = payload.withUnsafeBytes({ receiver.receive(header: header, payload: $0) }) { heard.append(digit.character) }
        }
        #expect(heard == ["1", "1", "2", "3", "#"])
    }

    @Test func badInputIsRefusedWhole() {
        var sender = RFC4733Sender()
        #expect(throws: RFC4733Sender.QueueError.invalidDigit("x")) { try sender.enqueue("12x") }
        #expect(!sender.isBusy)
        #expect(throws: RFC4733Sender.QueueError.queueFull) { try sender.enqueue(String(repeating: "1", count: 65)) }
    }

    @Test func cancelDropsQueuedDigitsButEndsTheSoundingOne() throws {
        var sender = RFC4733Sender()
        try sender.enqueue("123")
        _ = run(&sender, slots: 2)
        sender.cancel()
        let rest = run(&sender, slots: 20)
        let ends = rest.filter { if case .event(let event, _, _) = $0 { return event.isEnd } else { return false } }
        #expect(ends.count == 3)
        #expect(!rest.contains { if case .event(let event, _, _) = $0 { return event.event != 1 } else { return false } })
    }
}
