import Testing
@testable import Media

@Suite struct PlayoutBufferTests {
    private func append(_ buffer: inout PlayoutBuffer, _ samples: [Int16]) -> Int {
        samples.withUnsafeBufferPointer { buffer.append($0) }
    }

    private func read(_ buffer: inout PlayoutBuffer, _ n: Int) -> [Int16] {
        var out = [Int16](repeating: 0, count: n)
        let got = out.withUnsafeMutableBufferPointer { buffer.read(into: $0) }
        return Array(out[0..<got])
    }

    @Test func wrapsAroundInOrder() {
        var buffer = PlayoutBuffer(initialCapacity: 8, maxCapacity: 8)
        _ = append(&buffer, [1, 2, 3, 4, 5, 6])
        #expect(read(&buffer, 4) == [1, 2, 3, 4])
        _ = append(&buffer, [7, 8, 9, 10, 11])
        #expect(buffer.count == 7)
        #expect(read(&buffer, 10) == [5, 6, 7, 8, 9, 10, 11])
        #expect(buffer.count == 0)
    }

    @Test func growsThenCapsDroppingNewest() {
        var buffer = PlayoutBuffer(initialCapacity: 4, maxCapacity: 10)
        _ = append(&buffer, [1, 2, 3])
        #expect(read(&buffer, 2) == [1, 2])
        #expect(append(&buffer, [4, 5, 6, 7, 8]) == 5)  // 6 queued: grows to 8
        #expect(buffer.capacity == 8)
        #expect(append(&buffer, Array(9...14)) == 4)  // cap 10: 2 dropped
        #expect(buffer.droppedSamples == 2)
        #expect(buffer.capacity == 10)
        #expect(read(&buffer, 20) == Array(3...12))
    }

    @Test func marksBecomeDueWhenTheirAudioIsRead() {
        var buffer = PlayoutBuffer(initialCapacity: 16, maxCapacity: 16)
        buffer.appendMark(0)  // nothing before it: due at once
        _ = append(&buffer, [1, 2, 3])
        buffer.appendMark(1)
        _ = append(&buffer, [4])
        buffer.appendMark(2)
        let limit = buffer.markSerialLimit
        #expect(buffer.popDueMark(serialLimit: limit) == 0)
        #expect(buffer.popDueMark(serialLimit: limit) == nil)
        _ = read(&buffer, 2)
        #expect(buffer.popDueMark(serialLimit: limit) == nil)
        _ = read(&buffer, 1)
        #expect(buffer.popDueMark(serialLimit: limit) == 1)
        #expect(buffer.popDueMark(serialLimit: limit) == nil)
        buffer.clear()
        // A mark added after the limit was taken waits for the next round.
        buffer.appendMark(3)
        #expect(buffer.popDueMark(serialLimit: limit) == 2)
        #expect(buffer.popDueMark(serialLimit: limit) == nil)
        #expect(buffer.popDueMark(serialLimit: buffer.markSerialLimit) == 3)
        #expect(buffer.pendingMarkCount == 0)
    }
}

@Suite struct PlayoutBufferFloodTests {
    @Test func aFloodOfAMinuteIntoATenSecondCapStaysAtTheCapAndCountsTheRest() {
        let cap = 10 * 8000
        var buffer = PlayoutBuffer(initialCapacity: 8000, maxCapacity: cap)
        let chunk = [Int16](repeating: 1000, count: 4000)  // 0.5 s, as an agent might send it
        var accepted = 0
        for _ in 0..<120 { accepted += chunk.withUnsafeBufferPointer { buffer.append($0) } }
        #expect(accepted == cap)
        #expect(buffer.capacity == cap)
        #expect(buffer.peakCount == cap)
        #expect(buffer.droppedSamples == 60 * 8000 - cap)
    }
}
