import NIOCore
import Testing

@testable import Media

@Suite struct MediaLatencyTests {
    @Test func bucketsAreExactBelow128MicrosecondsAndWithin7PercentAbove() {
        for micros: UInt64 in [0, 1, 5, 127, 128, 129, 200, 1000, 1999, 2000, 65_000, 999_999] {
            let bucket = MediaLatencyRecorder.bucket(microseconds: micros)
            let upper = MediaLatencyRecorder.upperBound(ofBucket: bucket)
            #expect(UInt64(upper) > micros, "\(micros) µs in bucket \(bucket) bounded by \(upper)")
            #expect(Double(upper) <= Double(max(micros, 1)) * 1.07 + 1, "\(micros) µs bounded too loosely by \(upper)")
        }
        #expect(MediaLatencyRecorder.bucket(microseconds: 10_000_000) == MediaLatencyRecorder.bucketCount - 1)
    }

    @Test func percentilesComeFromTheRecordedDurations() {
        let recorder = MediaLatencyRecorder.current
        _ = recorder.snapshot(reset: true)
        let now = NIODeadline.now().uptimeNanoseconds
        // 99 packets timed "now" (≈ 0 µs) and one 5 ms ago.
        for _ in 0..<99 { recorder.record(.rtpSent, .opus, since: now + 1_000_000_000) }
        recorder.record(.rtpSent, .opus, since: now - 5_000_000)
        let snapshot = recorder.snapshot(reset: true)
        #expect(snapshot.count(.rtpSent, .opus) == 100)
        #expect(snapshot.count(.rtpSent, .g711) == 0)
        #expect(snapshot.percentile(0.5, .rtpSent, .opus) == 1)
        #expect(snapshot.percentile(0.99, .rtpSent, .opus) == 1)
        #expect((5000...5400).contains(snapshot.percentile(1, .rtpSent, .opus) ?? 0))
        #expect(snapshot.percentile(0.5, .rtpSent, .g711) == nil)
        #expect(snapshot.count(over: 1000, .rtpSent, .opus) == 1)
        #expect(snapshot.count(over: 20_000, .rtpSent, .opus) == 0)
        #expect(recorder.snapshot().count(.rtpSent, .opus) == 0)
    }
}
