import NIOCore
import NIOPosix

/// Where a media packet's time in the gateway is measured. Pacing is left out: audio waiting in the jitter buffer
/// or the playout buffer for its 20 ms slot is the design, not a cost. Each direction is two segments:
/// - caller → agent: `rtpReceived` (datagram handed to the session → stored in the jitter buffer), then
///   `agentFrameSent` (the 20 ms tick's deadline → the agent frame handed to the WebSocket);
/// - agent → caller: `agentFrameReceived` (agent bytes read from the socket → samples in the playout buffer), then
///   `rtpSent` (the tick's deadline → the RTP datagram handed to the UDP socket).
/// A tick's segment starts at its deadline, not when it ran, so an overloaded loop's lateness counts.
public enum MediaPathSegment: Int, CaseIterable, Sendable {
    case rtpReceived, agentFrameSent, agentFrameReceived, rtpSent

    public var name: String {
        switch self {
        case .rtpReceived: "rtp_received"
        case .agentFrameSent: "agent_frame_sent"
        case .agentFrameReceived: "agent_frame_received"
        case .rtpSent: "rtp_sent"
        }
    }
}

/// The codec families measured apart (Opus costs far more per packet than G.711).
public enum MediaLatencyCodec: Int, CaseIterable, Sendable {
    case g711, opus

    public var name: String { self == .g711 ? "g711" : "opus" }

    init(_ codec: AudioCodec) { self = codec.law != nil ? .g711 : .opus }
}

/// Histograms of `MediaPathSegment` durations, one recorder per event-loop thread, so recording is a few
/// arithmetic instructions and an increment: no lock, no atomic, no allocation. Read with `snapshot()` on that
/// thread (`Gateway.mediaLatency` hops onto every loop).
///
/// Buckets: 1 µs wide below 128 µs, then 16 per power of two (≤ 6.25 % wide) up to about 1 s; beyond, the last.
public final class MediaLatencyRecorder {
    static let linearBuckets = 128
    static let subBuckets = 16
    /// 2^7 µs … 2^20 µs (≈ 1 s), 16 each.
    public static let bucketCount = linearBuckets + (20 - 7 + 1) * subBuckets
    static let histogramCount = MediaPathSegment.allCases.count * MediaLatencyCodec.allCases.count

    /// Each thread reads and writes only its own value.
    nonisolated(unsafe) private static let perThread = ThreadSpecificVariable<MediaLatencyRecorder>()

    private let counts: UnsafeMutableBufferPointer<UInt64>
    /// When the agent bytes being handled were read (`markIngress`), 0 outside such a read: every `enqueue`
    /// that the read leads to is timed from it.
    private(set) var ingress: UInt64 = 0

    private init() {
        counts = .allocate(capacity: Self.bucketCount * Self.histogramCount)
        counts.initialize(repeating: 0)
    }

    deinit { counts.deallocate() }

    /// The calling thread's recorder, made on first use.
    public static var current: MediaLatencyRecorder {
        if let recorder = perThread.currentValue { return recorder }
        let recorder = MediaLatencyRecorder()
        perThread.currentValue = recorder
        return recorder
    }

    /// Counts one duration from `start` (a `NIODeadline`'s uptime nanoseconds) to now.
    public func record(_ segment: MediaPathSegment, _ codec: MediaLatencyCodec, since start: UInt64) {
        let now = NIODeadline.now().uptimeNanoseconds
        let micros = now > start ? (now - start) / 1000 : 0
        let histogram = segment.rawValue * MediaLatencyCodec.allCases.count + codec.rawValue
        counts[histogram * Self.bucketCount + Self.bucket(microseconds: micros)] += 1
    }

    /// Brackets the handling of bytes read from an agent's socket: audio they carry is timed from `markIngress`.
    public func markIngress() { ingress = NIODeadline.now().uptimeNanoseconds }
    public func clearIngress() { ingress = 0 }

    static func bucket(microseconds: UInt64) -> Int {
        if microseconds < UInt64(linearBuckets) { return Int(microseconds) }
        let exponent = UInt64.bitWidth - 1 - microseconds.leadingZeroBitCount  // ≥ 7
        guard exponent <= 20 else { return bucketCount - 1 }
        let sub = Int(microseconds >> UInt64(exponent - 4)) & (subBuckets - 1)
        return linearBuckets + (exponent - 7) * subBuckets + sub
    }

    /// The largest duration in `bucket`, in microseconds.
    static func upperBound(ofBucket bucket: Int) -> Int {
        if bucket < linearBuckets { return bucket + 1 }
        let exponent = 7 + (bucket - linearBuckets) / subBuckets
        let sub = (bucket - linearBuckets) % subBuckets
        return (1 << exponent) + (sub + 1) << (exponent - 4)
    }

    /// This thread's counts so far; with `reset`, starts again from zero.
    public func snapshot(reset: Bool = false) -> MediaLatencySnapshot {
        let result = MediaLatencySnapshot(counts: Array(counts))
        if reset { counts.update(repeating: 0) }
        return result
    }
}

@available(*, unavailable)
extension MediaLatencyRecorder: Sendable {}

/// Histogram counts from one or more recorders.
public struct MediaLatencySnapshot: Sendable, Equatable {
    var counts: [UInt64]

    public init() {
        counts = Array(repeating: 0, count: MediaLatencyRecorder.bucketCount * MediaLatencyRecorder.histogramCount)
    }

    init(counts: [UInt64]) { self.counts = counts }

    public mutating func add(_ other: MediaLatencySnapshot) {
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    private func histogram(_ segment: MediaPathSegment, _ codec: MediaLatencyCodec) -> ArraySlice<UInt64> {
        let start = (segment.rawValue * MediaLatencyCodec.allCases.count + codec.rawValue) * MediaLatencyRecorder.bucketCount
        return counts[start..<(start + MediaLatencyRecorder.bucketCount)]
    }

    public func count(_ segment: MediaPathSegment, _ codec: MediaLatencyCodec) -> UInt64 {
        histogram(segment, codec).reduce(0, +)
    }

    /// How many durations were longer than `microseconds` (to bucket precision).
    public func count(over microseconds: Int, _ segment: MediaPathSegment, _ codec: MediaLatencyCodec) -> UInt64 {
        let first = MediaLatencyRecorder.bucket(microseconds: UInt64(microseconds)) + 1
        return histogram(segment, codec).dropFirst(first).reduce(0, +)
    }

    /// The smallest bucket bound (µs) at or below which `fraction` of the durations lie; nil with no data.
    public func percentile(_ fraction: Double, _ segment: MediaPathSegment, _ codec: MediaLatencyCodec) -> Int? {
        let histogram = histogram(segment, codec)
        let total = histogram.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = UInt64((Double(total) * fraction).rounded(.up))
        var seen: UInt64 = 0
        for (offset, count) in histogram.enumerated() {
            seen += count
            if seen >= max(rank, 1) { return MediaLatencyRecorder.upperBound(ofBucket: offset) }
        }
        return MediaLatencyRecorder.upperBound(ofBucket: MediaLatencyRecorder.bucketCount - 1)
    }
}
