import Media
import NIOCore

extension Gateway {
    /// Time media packets spent in the gateway since start (or the last reset), summed over every event loop:
    /// each loop's `MediaLatencyRecorder` is read on its own thread.
    /// - Parameter reset: start every loop's histograms again from zero after reading them.
    public func mediaLatency(reset: Bool = false) async throws -> MediaLatencySnapshot {
        var total = MediaLatencySnapshot()
        for loop in group.makeIterator() {
            total.add(try await loop.submit { MediaLatencyRecorder.current.snapshot(reset: reset) }.get())
        }
        return total
    }
}
