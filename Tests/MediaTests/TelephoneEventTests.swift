import Testing
@testable import Media

private func header(ts: UInt32, seq: UInt16 = 0, marker: Bool = false) -> RTPHeader {
    RTPHeader(marker: marker, payloadType: 101, sequenceNumber: seq, timestamp: ts, ssrc: 1)
}

private func payload(_ event: UInt8, end: Bool = false, duration: UInt16) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 4)
    bytes.withUnsafeMutableBytes {
        _ = TelephoneEvent(event: event, isEnd: end, volume: 10, duration: duration).write(to: $0)
    }
    return bytes
}

private extension RFC4733Receiver {
    mutating func feed(ts: UInt32, event: UInt8, end: Bool = false, duration: UInt16, marker: Bool = false)
        -> DTMFDigit?
    {
        let bytes = payload(event, end: end, duration: duration)
        return bytes.withUnsafeBytes { receive(header: header(ts: ts, marker: marker), payload: $0) }
    }
}

@Suite struct TelephoneEventTests {
    @Test func parsesPayload() throws {
        let bytes: [UInt8] = [11, 0x80 | 7, 0x03, 0x20]
        let event = try #require(bytes.withUnsafeBytes { TelephoneEvent.parse($0) })
        #expect(event == TelephoneEvent(event: 11, isEnd: true, volume: 7, duration: 800))
        #expect(event.character == "#")
        #expect([UInt8](repeating: 0, count: 3).withUnsafeBytes { TelephoneEvent.parse($0) } == nil)
    }

    @Test func mapsEventCodesToKeys() {
        let keys = (0...15).map { TelephoneEvent(event: UInt8($0), isEnd: false, volume: 0, duration: 0).character }
        #expect(keys.compactMap { $0 }.map(String.init).joined() == "0123456789*#ABCD")
        #expect(TelephoneEvent(event: 16, isEnd: false, volume: 0, duration: 0).character == nil)
    }

    @Test func startContinuationAndThreeEndsGiveOneDigit() {
        var receiver = RFC4733Receiver()
        var digits: [DTMFDigit] = []
        if let d = receiver.feed(ts: 1000, event: 5, duration: 160, marker: true) { digits.append(d) }
        for duration in stride(from: UInt16(320), through: 800, by: 160) {
            if let d = receiver.feed(ts: 1000, event: 5, duration: duration) { digits.append(d) }
        }
        for _ in 0..<3 {
            if let d = receiver.feed(ts: 1000, event: 5, end: true, duration: 960) { digits.append(d) }
        }
        #expect(digits == [DTMFDigit(character: "5", durationMs: 20)])
    }

    @Test func sameKeyTwiceWithDifferentTimestampsIsTwoPresses() {
        var receiver = RFC4733Receiver()
        var digits: [Character] = []
        for ts: UInt32 in [1000, 5000] {
            if let d = receiver.feed(ts: ts, event: 1, duration: 160, marker: true) { digits.append(d.character) }
            if let d = receiver.feed(ts: ts, event: 1, duration: 320) { digits.append(d.character) }
            for _ in 0..<3 { if let d = receiver.feed(ts: ts, event: 1, end: true, duration: 480) { digits.append(d.character) } }
        }
        #expect(digits == ["1", "1"])
    }

    @Test func endPacketsOnlyGiveOneDigitWithTheirDuration() {
        var receiver = RFC4733Receiver()
        var digits: [DTMFDigit] = []
        for _ in 0..<3 {
            if let d = receiver.feed(ts: 42, event: 10, end: true, duration: 800) { digits.append(d) }
        }
        #expect(digits == [DTMFDigit(character: "*", durationMs: 100)])
    }

    @Test func lostMarkerAndStartStillReportsOnContinuation() {
        var receiver = RFC4733Receiver()
        #expect(receiver.feed(ts: 7, event: 9, duration: 480)?.character == "9")
        #expect(receiver.feed(ts: 7, event: 9, duration: 640) == nil)
    }

    @Test func lateRetransmitOfEarlierPressIsIgnored() {
        var receiver = RFC4733Receiver()
        #expect(receiver.feed(ts: 100, event: 2, duration: 160)?.character == "2")
        #expect(receiver.feed(ts: 900, event: 3, duration: 160)?.character == "3")
        #expect(receiver.feed(ts: 100, event: 2, end: true, duration: 800) == nil)
        #expect(receiver.feed(ts: 900, event: 3, end: true, duration: 800) == nil)
    }

    @Test func ignoresNonKeyEventsAndShortPayloads() {
        var receiver = RFC4733Receiver()
        #expect(receiver.feed(ts: 1, event: 16, duration: 160) == nil)  // flash
        let short: [UInt8] = [1, 0]
        #expect(short.withUnsafeBytes { receiver.receive(header: header(ts: 2), payload: $0) } == nil)
    }

    @Test func digitDescriptionHidesTheKey() {
        #expect(!"\(DTMFDigit(character: "7", durationMs: 40))".contains("7"))
    }
}
