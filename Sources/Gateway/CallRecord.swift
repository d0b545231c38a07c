import Foundation
import Identity
import Media
import NIOConcurrencyHelpers

/// One call's record (CDR), written as one JSON line when the call is over. Carries no audio, keys or digits.
public struct CallRecord: Codable, Sendable, Equatable {
    public var callSid: String
    public var sipCallId: String
    /// `inbound`, `outbound-api` for a call we placed (Twilio's values), or `transfer` for the leg a transfer
    /// placed to its target.
    public var direction = "inbound"
    /// For calls we place: how the attempt ended (answered, busy, no-answer, failed, canceled).
    public var outcome: CallOutcome?
    public var trunk: String?
    public var route: String?
    public var agent: String?
    public var from: String
    public var to: String
    public var source: String
    public var startTime: Date
    public var answerTime: Date?
    public var endTime: Date?
    /// Seconds from answer to end (0 for calls never answered).
    public var durationSeconds: Double = 0
    /// The final SIP status of the INVITE: the one we sent (inbound) or received (outbound).
    public var sipStatus: Int?
    /// caller, agent or gateway.
    public var hangupBy: String?
    public var hangupReason: String?
    public var agentFailure: String?
    public var codec: String?
    public var packetsIn = 0
    public var packetsOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    public var packetsLost = 0
    public var digitsReceived = 0
    /// Secure captures (PCI) on this call: result, ending and number of keys each; never a key.
    public var secureCapture: [SecureCaptureRecord]?
    /// Caller identity (STIR/SHAKEN): valid, invalid or absent; attestation; RFC 8224 reason code; local or carrier.
    public var stirStatus: String?
    public var stirAttestation: String?
    public var stirReasonCode: Int?
    public var stirReason: String?
    public var stirSource: String?
    /// The SRTP crypto suite (SDES), nil for plain RTP.
    public var srtp: String?
    /// SRTP packets dropped for failed authentication or as replays (counted, never fatal).
    public var srtpAuthenticationFailures = 0
    public var srtpReplayFailures = 0
    /// Audio payloads the codec could not decode.
    public var decodeFailures = 0
    /// Jitter buffer: packets late, duplicated, concealed (lost at their turn), and the RFC 3550 jitter (ms).
    public var packetsLate = 0
    public var packetsDuplicated = 0
    public var packetsConcealed = 0
    public var jitterMilliseconds = 0.0
    /// RFC 3389 comfort-noise packets from the peer (its silence, neither audio nor loss).
    public var comfortNoisePackets = 0
    /// RTCP: reports sent and received; the peer's last report on our stream (fraction lost 0…1, cumulative loss,
    /// jitter in ms); round-trip time from LSR/DLSR in ms (nil until measured).
    public var rtcpReportsSent = 0
    public var rtcpReportsReceived = 0
    public var peerFractionLost: Double?
    public var peerPacketsLost: Int?
    public var peerJitterMilliseconds: Double?
    public var roundTripLastMilliseconds: Double?
    public var roundTripMinMilliseconds: Double?
    public var roundTripAverageMilliseconds: Double?
    public var roundTripMaxMilliseconds: Double?

    mutating func rtcp(_ figures: RTCPFigures) {
        let tenth = { (value: Double?) in value.map { ($0 * 10).rounded() / 10 } }
        rtcpReportsSent = figures.reportsSent
        rtcpReportsReceived = figures.reportsReceived
        peerFractionLost = figures.peerFractionLost.map { ($0 * 1000).rounded() / 1000 }
        peerPacketsLost = figures.peerPacketsLost
        peerJitterMilliseconds = tenth(figures.peerJitterMilliseconds)
        roundTripLastMilliseconds = tenth(figures.roundTripLastMilliseconds)
        roundTripMinMilliseconds = tenth(figures.roundTripMinMilliseconds)
        roundTripAverageMilliseconds = tenth(figures.roundTripAverageMilliseconds)
        roundTripMaxMilliseconds = tenth(figures.roundTripMaxMilliseconds)
    }
    /// Attempts made to reach the remote agent (2 when the first failed and the retry was made).
    public var agentConnectAttempts: Int?
    /// Agent audio dropped because it ran more than the route's `max_buffer_s` ahead of playout, in ms: an error
    /// of the agent's, counted rather than buffered.
    public var agentAudioOverflowMilliseconds = 0
    /// The most agent audio that waited for playout at once, in ms (at most `max_buffer_s`).
    public var playoutPeakMilliseconds = 0
    /// Time to first audio per caller turn (ms from the end of the caller's speech to the agent's first audio
    /// after it), and its median and 95th percentile; nil when no turn was answered.
    public var ttfaMilliseconds: [Int]?
    public var ttfaP50Milliseconds: Int?
    public var ttfaP95Milliseconds: Int?
    /// Transfers asked for on this call, in order.
    public var transfers: [TransferRecord]?
    /// On a transfer's leg to the target: the call it was placed for.
    public var parentCallSid: String?

    mutating func media(_ stats: RTPStatistics) {
        srtpAuthenticationFailures = stats.srtpAuthenticationFailures
        srtpReplayFailures = stats.srtpReplayFailures
        decodeFailures = stats.decodeFailures
        packetsLate = stats.packetsLate
        packetsDuplicated = stats.packetsDuplicated
        packetsConcealed = stats.packetsConcealed
        comfortNoisePackets = stats.comfortNoisePackets
        jitterMilliseconds = (stats.jitterMilliseconds * 10).rounded() / 10
    }

    mutating func identity(_ verdict: IdentityVerdict) {
        stirStatus = verdict.status.rawValue
        stirAttestation = verdict.attestation?.rawValue
        stirReasonCode = verdict.reason?.sipStatus
        stirReason = verdict.reason.map { "\($0)" }
        stirSource = verdict.source.rawValue
    }

    enum CodingKeys: String, CodingKey {
        case callSid = "call_sid", sipCallId = "sip_call_id", direction, outcome, trunk, route, agent, from, to, source
        case startTime = "start_time", answerTime = "answer_time", endTime = "end_time"
        case durationSeconds = "duration_s", sipStatus = "sip_status", hangupBy = "hangup_by"
        case hangupReason = "hangup_reason", agentFailure = "agent_failure", codec
        case packetsIn = "packets_in", packetsOut = "packets_out", bytesIn = "bytes_in", bytesOut = "bytes_out"
        case packetsLost = "packets_lost", digitsReceived = "digits_received"
        case secureCapture = "secure_capture"
        case stirStatus = "stir_status", stirAttestation = "stir_attestation", stirReasonCode = "stir_reason_code"
        case stirReason = "stir_reason", stirSource = "stir_source"
        case srtp, srtpAuthenticationFailures = "srtp_auth_failures", srtpReplayFailures = "srtp_replay_failures"
        case decodeFailures = "decode_failures"
        case packetsLate = "packets_late", packetsDuplicated = "packets_duplicated", packetsConcealed = "packets_concealed"
        case jitterMilliseconds = "jitter_ms", comfortNoisePackets = "comfort_noise_packets"
        case rtcpReportsSent = "rtcp_reports_sent", rtcpReportsReceived = "rtcp_reports_received"
        case peerFractionLost = "peer_fraction_lost", peerPacketsLost = "peer_packets_lost", peerJitterMilliseconds = "peer_jitter_ms"
        case roundTripLastMilliseconds = "rtt_last_ms", roundTripMinMilliseconds = "rtt_min_ms"
        case roundTripAverageMilliseconds = "rtt_avg_ms", roundTripMaxMilliseconds = "rtt_max_ms"
        case agentConnectAttempts = "agent_connect_attempts", agentAudioOverflowMilliseconds = "agent_audio_overflow_ms"
        case playoutPeakMilliseconds = "playout_peak_ms"
        case ttfaMilliseconds = "ttfa_ms", ttfaP50Milliseconds = "ttfa_p50_ms", ttfaP95Milliseconds = "ttfa_p95_ms"
        case transfers, parentCallSid = "parent_call_sid"
    }
}

/// How an attempt to reach a callee ended; Twilio's call-status words.
public enum CallOutcome: String, Codable, Sendable {
    case answered, busy, noAnswer = "no-answer", failed, canceled

    /// The outcome a final error response means (RFC 3261 §21; as Twilio maps them).
    init(finalStatus status: Int) {
        switch status {
        case 486, 600: self = .busy
        case 408, 480, 487: self = .noAnswer
        default: self = .failed
        }
    }
}

/// Appends call records to a JSON-lines file. Thread-safe: calls end on any event loop.
public final class CallRecordWriter: Sendable {
    private let handle: NIOLockedValueBox<FileHandle>
    public let path: String

    public init(path: String) throws {
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        self.handle = NIOLockedValueBox(handle)
    }

    public func write(_ record: CallRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)))
        }
        var line = try encoder.encode(record)
        line.append(UInt8(ascii: "\n"))
        try handle.withLockedValue { try $0.write(contentsOf: line) }
    }
}
