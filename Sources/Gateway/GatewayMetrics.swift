import Metrics
import SIP

/// What the gateway counts for Prometheus (`GET /metrics` on the admin API, when `trunkline serve` bootstraps a
/// metrics backend; otherwise swift-metrics discards it): calls by direction and outcome, calls live, media loss and
/// SRTP failures summed at each call's end, and whether each registration and termination address is up.
///
/// Labels carry configured names, directions and outcomes only: never a phone number, a digit, a key or a call id,
/// so the series stay few and secure capture has nothing to leak here.
struct GatewayMetrics: Sendable {
    func liveCalls(_ count: Int) {
        Gauge(label: "trunkline_calls_live").record(count)
    }

    /// A call record is written (every call, refused ones too): its outcome and its media figures.
    func recordWritten(_ record: CallRecord) {
        // Inbound records carry no outcome of their own: answered, or what their final status means.
        let outcome = record.outcome ?? (record.answerTime != nil ? .answered : record.sipStatus.map(CallOutcome.init(finalStatus:)) ?? .failed)
        Counter(label: "trunkline_calls_total", dimensions: [("direction", record.direction), ("outcome", outcome.rawValue)]).increment()
        if let trunk = record.trunk {
            Counter(label: "trunkline_trunk_calls_total", dimensions: [("trunk", trunk), ("direction", record.direction)]).increment()
        }
        if record.agentFailure != nil {
            Counter(label: "trunkline_agent_failures_total").increment()
        }
        Counter(label: "trunkline_call_seconds_total").increment(by: Int64(record.durationSeconds.rounded()))
        Counter(label: "trunkline_rtp_packets_received_total").increment(by: Int64(record.packetsIn))
        Counter(label: "trunkline_rtp_packets_lost_total").increment(by: Int64(record.packetsLost))
        Counter(label: "trunkline_rtp_packets_late_total").increment(by: Int64(record.packetsLate))
        Counter(label: "trunkline_srtp_auth_failures_total").increment(by: Int64(record.srtpAuthenticationFailures))
    }

    func registration(trunk: String, _ status: RegistrationStatus) {
        let up: Int
        switch status {
        case .registered: up = 1
        case .failed, .unregistered: up = 0
        }
        Gauge(label: "trunkline_registration_up", dimensions: [("trunk", trunk)]).record(up)
    }

    func terminationAddress(trunk: String, address: String, alive: Bool) {
        Gauge(label: "trunkline_termination_address_up", dimensions: [("trunk", trunk), ("address", address)]).record(alive ? 1 : 0)
    }
}
