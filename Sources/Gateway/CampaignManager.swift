import Compliance
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Campaigns run inside the serve process: a `CampaignRunner` task per running campaign, dialling through this
/// gateway (`GatewayDialer`, no HTTP hop). The store is the only shared state: pause and stop take effect at a
/// runner's next tick whoever wrote them (the admin API, `trunkline campaign pause`, another gateway); start and
/// resume also start this process's runner. Gateways sharing a PostgreSQL store each run a runner when started
/// on each (`FOR UPDATE SKIP LOCKED` splits the contacts). A restarted gateway resumes its running campaigns,
/// closing its own interrupted attempts first (never re-dialled).
public final class CampaignManager: Sendable {
    public let store: ComplianceStore
    let settings: ComplianceSettings
    let gate: ComplianceGate
    let dialer: GatewayDialer
    let logger: Logger
    private let runners = NIOLockedValueBox<[String: Runner]>([:])

    private struct Runner {
        var task: Task<Void, Never>?
        /// Started again while finishing: run once more rather than miss the new contacts.
        var again = false
    }

    public init(gateway: Gateway, store: ComplianceStore, settings: ComplianceSettings, logger: Logger) throws {
        self.store = store
        self.settings = settings
        self.gate = ComplianceGate(rules: try CallingRules.bundled(), nationalDNCMaxAgeDays: settings.nationalDNCMaxAgeDays)
        self.dialer = GatewayDialer(gateway: gateway)
        self.logger = logger
    }

    public func create(_ draft: CampaignDraft) async throws -> CampaignStatus {
        let campaign = try draft.campaign(defaultWindow: settings.callingWindow)
        try await store.createCampaign(campaign)
        return try await store.campaignStatus(campaign.id)
    }

    /// `running`, and this gateway dials it (start and resume are the same).
    public func start(_ id: String) async throws -> CampaignStatus {
        try await store.setCampaignState(id, .running)
        run(id)
        return try await store.campaignStatus(id)
    }

    public func pause(_ id: String) async throws -> CampaignStatus {
        try await store.setCampaignState(id, .paused)
        return try await store.campaignStatus(id)
    }

    public func stop(_ id: String) async throws -> CampaignStatus {
        try await store.setCampaignState(id, .stopped)
        return try await store.campaignStatus(id)
    }

    public func status(_ id: String) async throws -> CampaignStatus { try await store.campaignStatus(id) }

    /// At startup: runs every campaign the store says is running. Returns their names.
    @discardableResult
    public func resumeRunningCampaigns() async throws -> [String] {
        let ids = try await store.campaignIDs(in: .running)
        for id in ids { run(id) }
        return ids
    }

    /// Stops ticking; calls in flight are recorded as they end (the gateway's shutdown ends them). Returns once
    /// every runner has finished.
    public func shutdown() async {
        let tasks = runners.withLockedValue { $0.values.compactMap(\.task) }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    /// Whether this process runs the campaign now.
    public func isRunning(_ id: String) -> Bool { runners.withLockedValue { $0[id] != nil } }

    private func run(_ id: String) {
        runners.withLockedValue { runners in
            guard runners[id] == nil else { return runners[id]?.again = true }
            runners[id] = Runner()
            runners[id]?.task = Task { await self.drive(id) }
        }
    }

    private func drive(_ id: String) async {
        var logger = self.logger
        logger[metadataKey: "campaign"] = "\(id)"
        while true {
            let runner = CampaignRunner(store: store, campaignID: id, dialer: dialer, gate: gate, instance: settings.instance,
                                        recheckSeconds: settings.recheckSeconds, logger: logger)
            logger.info("campaign runner started", metadata: ["instance": "\(settings.instance)"])
            do {
                try await runner.run()
            } catch where Task.isCancelled {
                logger.info("campaign runner stopped with the gateway")
            } catch {
                logger.error("campaign runner failed; the campaign stays running and resumes at the next start", metadata: ["error": "\(error)"])
            }
            let again = runners.withLockedValue { runners -> Bool in
                if runners[id]?.again == true, !Task.isCancelled {
                    runners[id]?.again = false
                    return true
                }
                runners[id] = nil
                return false
            }
            guard again else { return }
        }
    }
}

/// A campaign as the CLI and the admin API describe it (text and numbers), checked into a `Campaign`.
public struct CampaignDraft: Sendable, Decodable {
    public var name: String
    public var purpose: String
    public var seller: String
    public var subject: String?
    public var trunk: String
    public var route: String?
    public var from: String
    /// `HH:MM-HH:MM`, inside 08:00-21:00; default the configured `calling_window`.
    public var window: String?
    public var maxAttempts: Int?
    public var retryBusySeconds: Int?
    public var retryNoAnswerSeconds: Int?
    public var concurrency: Int?
    public var callsPerSecond: Int?
    public var quietDates: [String]?

    enum CodingKeys: String, CodingKey {
        case name, purpose, seller, subject, trunk, route, from, window, concurrency
        case maxAttempts = "max_attempts", retryBusySeconds = "retry_busy_s", retryNoAnswerSeconds = "retry_no_answer_s"
        case callsPerSecond = "cps", quietDates = "quiet_dates"
    }

    public init(name: String, purpose: String, seller: String, subject: String?, trunk: String, route: String?, from: String,
                window: String?, maxAttempts: Int?, retryBusySeconds: Int?, retryNoAnswerSeconds: Int?, concurrency: Int?,
                callsPerSecond: Int?, quietDates: [String]?) {
        self.name = name
        self.purpose = purpose
        self.seller = seller
        self.subject = subject
        self.trunk = trunk
        self.route = route
        self.from = from
        self.window = window
        self.maxAttempts = maxAttempts
        self.retryBusySeconds = retryBusySeconds
        self.retryNoAnswerSeconds = retryNoAnswerSeconds
        self.concurrency = concurrency
        self.callsPerSecond = callsPerSecond
        self.quietDates = quietDates
    }

    /// Throws `StoreError.invalid` naming the bad field.
    public func campaign(defaultWindow: CallingWindow) throws -> Campaign {
        guard let purpose = CampaignPurpose(rawValue: purpose) else { throw StoreError.invalid("purpose must be marketing or informational") }
        let fromNumber: PhoneNumber
        do { fromNumber = try PhoneNumber(from) } catch { throw StoreError.invalid("from '\(from)': \(error.reason)") }
        var callingWindow = defaultWindow
        if let window {
            guard let parsed = CallingWindow(parsing: window), parsed.intersection(.federal) == parsed else {
                throw StoreError.invalid("window '\(window)' must be HH:MM-HH:MM inside 08:00-21:00")
            }
            callingWindow = parsed
        }
        let campaign = Campaign(
            id: name, purpose: purpose, seller: seller, subject: subject, trunk: trunk, route: route, fromNumber: fromNumber,
            window: callingWindow, maxAttempts: maxAttempts ?? Campaign.defaultMaxAttempts,
            retryBusySeconds: Int64(retryBusySeconds ?? Int(Campaign.defaultRetryBusySeconds)),
            retryNoAnswerSeconds: Int64(retryNoAnswerSeconds ?? Int(Campaign.defaultRetryNoAnswerSeconds)),
            concurrency: concurrency ?? 1, callsPerSecond: callsPerSecond ?? 1, quietDates: Set(quietDates ?? []))
        try campaign.validate()
        return campaign
    }
}
