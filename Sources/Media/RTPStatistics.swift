/// Counters of one RTP session; a plain value, safe to copy into call records.
public struct RTPStatistics: Sendable, Hashable, Codable {
    /// Packets accepted from the peer (audio and telephone-event).
    public var packetsReceived = 0
    /// Payload bytes of the accepted packets (headers and padding excluded).
    public var bytesReceived = 0
    public var packetsSent = 0
    /// Payload bytes sent (160 per 20 ms G.711 packet; headers excluded).
    public var bytesSent = 0
    /// Packets the peer sent that never arrived: expected (from the extended highest sequence number,
    /// RFC 3550 A.3) minus received, summed over each SSRC/resync of the peer's stream. Never negative.
    public var packetsLost = 0
    /// Datagrams dropped: not RTP, malformed, an unexpected payload type, or arrived before `start`.
    public var packetsIgnored = 0
    /// DTMF presses reported, from RFC 4733 events or in-band tones (presses, not packets).
    public var telephoneEvents = 0
    /// Samples refused by `enqueue` because the playout buffer was at its cap.
    public var playoutSamplesDropped = 0
    /// The most samples that ever waited in the playout buffer at once.
    public var playoutPeakSamples = 0
    /// Times the sender was so late that it gave up catching up and restarted its clock.
    public var senderClockResets = 0
    /// Whether the stream is SRTP.
    public var srtp = false
    /// SRTP packets dropped because their authentication tag did not verify (forged, corrupted or wrong key).
    public var srtpAuthenticationFailures = 0
    /// SRTP packets dropped as replays (already seen, or older than the replay window).
    public var srtpReplayFailures = 0
    /// Packets libsrtp refused to protect (not sent).
    public var srtpProtectFailures = 0
    /// Audio payloads the codec could not decode (corrupt Opus), dropped.
    public var decodeFailures = 0
    /// Outbound frames the codec failed to encode (not sent).
    public var encodeFailures = 0
    /// Audio packets that arrived after their turn in the jitter buffer (dropped).
    public var packetsLate = 0
    /// Audio packets received twice (the copy dropped).
    public var packetsDuplicated = 0
    /// Audio packets missing at their turn and concealed (PLC, or Opus FEC).
    public var packetsConcealed = 0
    /// Audio packets dropped to shorten the jitter buffer after the network calmed.
    public var packetsDiscarded = 0
    /// Times the jitter buffer ran dry while playing (the peer paused, or the delay was too short).
    public var jitterBufferUnderruns = 0
    /// RFC 3550 interarrival jitter of the peer's audio, in milliseconds.
    public var jitterMilliseconds = 0.0
    /// RFC 3389 comfort-noise packets received (the peer's silence; neither audio nor loss).
    public var comfortNoisePackets = 0
    /// RTCP both ways: reports, the peer's view of our stream, round-trip times.
    public var rtcp = RTCPFigures()

    public init() {}
}

/// RFC 3550 Appendix A.1 sequence-number bookkeeping for the peer's stream (without probation: the first
/// packet starts the count), giving packets lost per A.3.
struct SequenceTracker: Sendable {
    private static let maxDropout: UInt16 = 3000
    private static let maxMisorder: UInt16 = 100

    private var initialized = false
    private var maxSeq: UInt16 = 0
    private var cycles: Int64 = 0
    private var baseSeq: Int64 = 0
    private var badSeq: Int64 = -1
    private var received: Int64 = 0
    /// Loss counted in earlier epochs (before a resync or SSRC change).
    private var carriedLost: Int64 = 0
    private var ssrc: UInt32 = 0

    /// Accounts one packet.
    mutating func update(sequence seq: UInt16, ssrc: UInt32) {
        if initialized && ssrc != self.ssrc {
            carriedLost += currentLost
            initialized = false
        }
        guard initialized else {
            start(at: seq, ssrc: ssrc)
            return
        }
        let delta = seq &- maxSeq
        if delta < Self.maxDropout {
            if seq < maxSeq { cycles += 65536 }
            maxSeq = seq
        } else if delta <= UInt16.max - Self.maxMisorder {
            // A very large jump: resync only if the next packet continues from it.
            if Int64(seq) == badSeq {
                carriedLost += currentLost
                start(at: seq, ssrc: ssrc)
                return
            }
            badSeq = Int64(seq &+ 1)
            return
        }
        // else: duplicate or reordered packet, counted as received.
        received += 1
    }

    private mutating func start(at seq: UInt16, ssrc: UInt32) {
        initialized = true
        self.ssrc = ssrc
        maxSeq = seq
        cycles = 0
        baseSeq = Int64(seq)
        badSeq = -1
        received = 1
    }

    private var currentLost: Int64 {
        guard initialized else { return 0 }
        let expected = cycles + Int64(maxSeq) - baseSeq + 1
        return max(0, expected - received)
    }

    var lost: Int { Int(carriedLost + currentLost) }

    /// For RTCP report blocks (RFC 3550 A.3), over the current source: packets expected and received, the
    /// extended highest sequence number, and the source.
    var expected: Int { initialized ? Int(cycles + Int64(maxSeq) - baseSeq + 1) : 0 }
    var receivedCount: Int { Int(received) }
    var extendedHighest: UInt32 { UInt32(truncatingIfNeeded: cycles + Int64(maxSeq)) }
    var sourceSSRC: UInt32? { initialized ? ssrc : nil }
}
