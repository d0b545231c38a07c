import Foundation
import Logging

/// Drives one campaign: claims due contacts through the gate, dials them through a `CampaignDialer`, records
/// outcomes. Pace: at most `callsPerSecond` new calls per tick of one second and `concurrency` in flight.
/// State (paused/running/stopped) lives in the store, so `trunkline campaign pause` in another process, or another
/// gateway sharing the PostgreSQL store, is obeyed at the next tick.
///
/// Time comes from the store's `ComplianceClock`; with a test clock whose `sleep` advances time, a campaign spanning
/// days runs in milliseconds.
public actor CampaignRunner {
    public let campaignID: String
    /// Names this process in attempt rows; must be stable across restarts so crash recovery finds its attempts.
    public let instance: String
    private let store: ComplianceStore
    private let dialer: any CampaignDialer
    private let gate: ComplianceGate
    /// How long a contact refused by a temporary rule (window, quiet date, cap, stale list) waits before the gate
    /// is asked again.
    private let recheckSeconds: Int64
    private let logger: Logger
    private var inFlight = 0

    public static let defaultRecheckSeconds: Int64 = 900

    public init(store: ComplianceStore, campaignID: String, dialer: any CampaignDialer, gate: ComplianceGate, instance: String,
                recheckSeconds: Int64 = CampaignRunner.defaultRecheckSeconds, logger: Logger = Logger(label: "trunkline.campaign")) {
        self.store = store
        self.campaignID = campaignID
        self.dialer = dialer
        self.gate = gate
        self.instance = instance
        self.recheckSeconds = recheckSeconds
        self.logger = logger
    }

    public func start() async throws { try await store.setCampaignState(campaignID, .running) }
    public func pause() async throws { try await store.setCampaignState(campaignID, .paused) }
    public func resume() async throws { try await store.setCampaignState(campaignID, .running) }
    public func stop() async throws { try await store.setCampaignState(campaignID, .stopped) }

    /// One scheduling pass, waiting for its calls to end: claim up to the free slots, dial them concurrently,
    /// record the outcomes. Returns what the gate decided.
    @discardableResult
    public func step() async throws -> ClaimResult {
        let claimed = try await claimSlots()
        await withTaskGroup(of: Void.self) { group in
            for ticket in claimed.tickets { group.addTask { await self.place(ticket) } }
        }
        return claimed
    }

    /// Runs until the campaign is stopped or has no contact left to call: recovers this instance's interrupted
    /// attempts first, then ticks once a second (sleeping until the next due contact when idle). Calls run
    /// concurrently with the ticks; `run` returns after the last one is recorded.
    public func run() async throws {
        let recovered = try await store.recoverInterruptedAttempts(instance: instance, campaignID: campaignID)
        if recovered > 0 { logger.warning("closed interrupted attempts after restart", metadata: ["count": "\(recovered)", "campaign": "\(campaignID)"]) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            while true {
                let campaign = try await store.campaign(campaignID)
                if campaign.state == .stopped { break }
                if campaign.state == .running {
                    for ticket in try await claimSlots().tickets { group.addTask { await self.place(ticket) } }
                }
                let idle = inFlight == 0
                let nextDue = try await store.nextDue(campaignID: campaignID)
                if idle, campaign.state == .running, nextDue == nil { break }
                let now = store.clock.seconds
                // Idle and nothing due: sleep until the next contact is due rather than ticking through the night.
                let wait: Int64 = if idle, campaign.state == .running, let nextDue, nextDue > now { nextDue - now } else { 1 }
                try await store.clock.sleep(for: .seconds(wait))
            }
            try await group.waitForAll()
        }
        try await store.checkpointLedger()
    }

    private func claimSlots() async throws -> ClaimResult {
        let campaign = try await store.campaign(campaignID)
        let slots = min(campaign.callsPerSecond, campaign.concurrency - inFlight)
        let claimed = try await store.claim(campaignID: campaignID, limit: slots, instance: instance, gate: gate, recheckSeconds: recheckSeconds)
        inFlight += claimed.tickets.count
        return claimed
    }

    private func place(_ ticket: DialTicket) async {
        let outcome = await dialer.dial(ticket.request)
        do {
            try await store.recordOutcome(ticket, outcome)
        } catch {
            // The attempt stays open and is closed as interrupted at the next start: never re-dialled.
            logger.error("could not record a call outcome", metadata: ["attempt": "\(ticket.request.attemptID)", "error": "\(error)"])
        }
        inFlight -= 1
    }
}
