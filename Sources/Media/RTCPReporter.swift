import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// How a session does RTCP: where reports go and how often.
public struct RTCPOptions: Sendable, Equatable {
    /// The peer's RTCP address from `a=rtcp:`; nil means the RTP address's port + 1 (RFC 3550 §11).
    public var remote: SocketAddress?
    /// RTCP shares the RTP port both ways (RFC 5761 `a=rtcp-mux`, offered and answered).
    public var multiplexed: Bool
    /// Mean time between reports; nil sends none (the peer's are still read).
    public var interval: TimeAmount?
    /// Spread intervals randomly (RFC 3550 §6.3.1); off for tests that want an exact schedule.
    public var randomised: Bool

    public init(remote: SocketAddress? = nil, multiplexed: Bool = false, interval: TimeAmount? = .seconds(5), randomised: Bool = true) {
        self.remote = remote
        self.multiplexed = multiplexed
        self.interval = interval
        self.randomised = randomised
    }
}

/// What the peer's RTCP told us about our stream and the path, as a plain value for the call record.
public struct RTCPFigures: Sendable, Hashable, Codable {
    /// Compound RTCP packets sent and accepted from the peer.
    public var reportsSent = 0
    public var reportsReceived = 0
    /// The peer's last report about our stream: fraction lost since its previous report (0…1), packets lost
    /// since the start, and its interarrival jitter in milliseconds. Nil until the peer reports on us.
    public var peerFractionLost: Double?
    public var peerPacketsLost: Int?
    public var peerJitterMilliseconds: Double?
    /// Round-trip times from the peer's LSR/DLSR (RFC 3550 §6.4.1), in milliseconds. Nil until one was measured.
    public var roundTripLastMilliseconds: Double?
    public var roundTripMinMilliseconds: Double?
    public var roundTripMaxMilliseconds: Double?
    public var roundTripAverageMilliseconds: Double? {
        roundTrips > 0 ? roundTripTotalMilliseconds / Double(roundTrips) : nil
    }
    var roundTrips = 0
    var roundTripTotalMilliseconds = 0.0
    /// The peer sent an RTCP BYE.
    public var peerSentBye = false

    public init() {}
}

/// The RTCP side of one session (RFC 3550 §6): when the next report is due, the report block about the peer's
/// stream, and what the peer's reports say. A pure value: time is passed in, so tests need no clock or socket.
public struct RTCPReporter: Sendable {
    /// Seconds since 1900 at the Unix epoch (NTP's era 0).
    static let ntpEpochOffset: UInt64 = 2_208_988_800

    /// The mean interval between reports (RFC 3550 §6.2 suggests 5 s for a two-party session); nil sends none
    /// (the peer's reports are still read).
    public let interval: TimeAmount?
    /// Spread each interval over 0.5…1.5 × `interval` (RFC 3550 §6.3.1), so peers do not synchronise;
    /// off in tests that want an exact schedule.
    public let randomised: Bool
    public private(set) var figures = RTCPFigures()
    private var nextReport: NIODeadline?
    /// RFC 3550 A.3: expected and received at the previous report, for the fraction lost in this interval.
    private var expectedPrior = 0
    private var receivedPrior = 0
    /// The peer's last SR: its compact NTP time and when it arrived, for our LSR/DLSR.
    private var lastSenderReport: (compactNTP: UInt32, arrival: NIODeadline)?

    public init(interval: TimeAmount?, randomised: Bool) {
        precondition(interval.map { $0 > .zero } ?? true, "RTCP needs a positive interval")
        self.interval = interval
        self.randomised = randomised
    }

    /// Starts the schedule: the first report goes out one interval after `now` (half of one, if randomised, as
    /// RFC 3550 §6.2 allows for the first).
    public mutating func begin(now: NIODeadline) {
        guard let interval else { return }
        nextReport = now + (randomised ? .nanoseconds(interval.nanoseconds / 2) : interval)
    }

    /// Whether a report is due at `now` (never before `begin`).
    public func isDue(now: NIODeadline) -> Bool {
        guard let next = nextReport else { return false }
        return now >= next
    }

    /// Notes a report sent at `now` and schedules the next.
    public mutating func sent(now: NIODeadline) {
        figures.reportsSent += 1
        guard let interval else { return }
        let spread = randomised ? Double.random(in: 0.5...1.5) : 1
        nextReport = now + .nanoseconds(Int64(Double(interval.nanoseconds) * spread))
    }

    /// The report block about the peer's stream, from the receive statistics (RFC 3550 A.3 for the loss figures).
    /// - Parameters:
    ///   - expected, received: packets expected (extended highest − base + 1) and received since the start.
    ///   - jitter: interarrival jitter in RTP timestamp units.
    public mutating func block(
        peerSSRC: UInt32, expected: Int, received: Int, extendedHighestSequence: UInt32, jitter: Double, now: NIODeadline
    ) -> RTCPReportBlock {
        let expectedInterval = expected - expectedPrior
        let lostInterval = expectedInterval - (received - receivedPrior)
        expectedPrior = expected
        receivedPrior = received
        let fraction = expectedInterval <= 0 || lostInterval <= 0 ? 0 : UInt8(min(255, (lostInterval << 8) / expectedInterval))
        var lsr: UInt32 = 0
        var dlsr: UInt32 = 0
        if let last = lastSenderReport {
            lsr = last.compactNTP
            dlsr = UInt32(clamping: (now - last.arrival).nanoseconds * 65536 / 1_000_000_000)
        }
        return RTCPReportBlock(
            ssrc: peerSSRC, fractionLost: fraction, cumulativeLost: Int32(clamping: expected - received),
            extendedHighestSequence: extendedHighestSequence, jitter: UInt32(clamping: Int(jitter.rounded())),
            lastSenderReport: lsr, delaySinceLastSenderReport: dlsr)
    }

    /// Takes the peer's compound report, arrived at `now` (monotonic) / `ntpNow` (wall clock, NTP format).
    /// - Parameter clockRate: of our stream's RTP clock, to turn the peer's jitter into milliseconds.
    public mutating func received(_ report: RTCPReport, now: NIODeadline, ntpNow: UInt64, clockRate: Int) {
        figures.reportsReceived += 1
        if report.bye { figures.peerSentBye = true }
        if let info = report.senderInfo { lastSenderReport = (info.compactNTP, now) }
        guard let block = report.blockAboutUs else { return }
        figures.peerFractionLost = Double(block.fractionLost) / 256
        figures.peerPacketsLost = Int(block.cumulativeLost)
        figures.peerJitterMilliseconds = Double(block.jitter) * 1000 / Double(clockRate)
        guard block.lastSenderReport != 0 else { return }
        // RFC 3550 §6.4.1: A − LSR − DLSR, all in 1/65536 s on the middle 32 bits of NTP time.
        let arrival = UInt32(truncatingIfNeeded: ntpNow >> 16)
        let roundTrip = arrival &- block.lastSenderReport &- block.delaySinceLastSenderReport
        // A wrapped (negative) result means clocks or a bogus DLSR: not a measurement.
        guard roundTrip < 0x8000_0000 else { return }
        let milliseconds = Double(roundTrip) * 1000 / 65536
        figures.roundTripLastMilliseconds = milliseconds
        figures.roundTripMinMilliseconds = min(figures.roundTripMinMilliseconds ?? milliseconds, milliseconds)
        figures.roundTripMaxMilliseconds = max(figures.roundTripMaxMilliseconds ?? milliseconds, milliseconds)
        figures.roundTrips += 1
        figures.roundTripTotalMilliseconds += milliseconds
    }

    /// The wall clock as a 64-bit NTP timestamp (RFC 5905: seconds since 1900, 32-bit fraction). No allocation.
    public static func ntpNow() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let seconds = UInt64(time.tv_sec) + ntpEpochOffset
        let fraction = (UInt64(time.tv_nsec) << 32) / 1_000_000_000
        return seconds << 32 | fraction
    }
}
