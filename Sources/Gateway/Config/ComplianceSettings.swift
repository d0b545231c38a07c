import Compliance
import Foundation

/// The `compliance:` section: where consent, DNC, campaigns and the ledger live, how the ledger is signed, and the
/// gate's defaults. Absent section: no campaigns (inbound calls need none of it).
public struct ComplianceSettings: Sendable, Equatable {
    /// `store:` a SQLite file path (relative to the config file) or a `postgres://user[:password]@host[:port]/db` URL.
    public var store = StoreLocation.sqlite(path: "run/compliance.db")
    /// `ledger_key:` Ed25519 private key (PKCS#8 PEM or base64 seed) that signs ledger checkpoints; without it the
    /// chain is still kept but checkpoints are not written.
    public var ledgerKeyPath: String?
    /// `checkpoint_interval:` sign the ledger head every this many entries.
    public var checkpointInterval = Ledger.defaultCheckpointInterval
    /// `calling_window:` default window for new campaigns, callee local time (`HH:MM-HH:MM`, inside 08:00-21:00).
    public var callingWindow = CallingWindow.federal
    /// `national_dnc_max_age_days:` refuse every dial when the imported national DNC list is older (at most 31).
    public var nationalDNCMaxAgeDays = ComplianceGate.defaultNationalDNCMaxAgeDays
    /// `recheck_interval_s:` how long a contact refused by a temporary rule (window, cap) waits to be re-checked.
    public var recheckSeconds = CampaignRunner.defaultRecheckSeconds
    /// `instance:` names this gateway in attempt rows (stable across restarts, unique among gateways sharing a store).
    public var instance = ProcessInfo.processInfo.hostName
    /// `disclosure:` the prompt and opt-out key of campaign calls.
    public var disclosure = DisclosureSettings()

    public init() {}

    static func parse(_ node: ConfigNode, resolve: (String) -> String) throws -> ComplianceSettings {
        let fields = try node.mapping(allowed: ["store", "ledger_key", "checkpoint_interval", "calling_window", "national_dnc_max_age_days",
                                               "recheck_interval_s", "instance", "disclosure"])
        var settings = ComplianceSettings()
        if let store = fields["store"] {
            let text = try store.string()
            switch StoreLocation(text) {
            case .sqlite(let path): settings.store = .sqlite(path: resolve(path))
            case .postgres(let url):
                do { try PostgresBackend.validate(url: url) } catch { throw store.error("\(error)") }
                settings.store = .postgres(url: url)
            }
        }
        if let key = fields["ledger_key"] {
            settings.ledgerKeyPath = resolve(try key.string())
            do { _ = try LedgerSigningKey.load(path: settings.ledgerKeyPath!) } catch { throw key.error("\(error)") }
        }
        if let interval = fields["checkpoint_interval"] { settings.checkpointInterval = try interval.int(in: 1...1_000_000) }
        if let window = fields["calling_window"] {
            let text = try window.string()
            guard let parsed = CallingWindow(parsing: text) else { throw window.error("'\(text)' is not HH:MM-HH:MM") }
            guard parsed.intersection(.federal) == parsed else {
                throw window.error("'\(text)' goes outside 08:00-21:00, the federal limit (47 CFR 64.1200(c)(1))")
            }
            settings.callingWindow = parsed
        }
        if let age = fields["national_dnc_max_age_days"] { settings.nationalDNCMaxAgeDays = try age.int(in: 1...31) }
        if let recheck = fields["recheck_interval_s"] { settings.recheckSeconds = Int64(try recheck.int(in: 10...86_400)) }
        if let instance = fields["instance"] { settings.instance = try instance.string() }
        if let disclosure = fields["disclosure"] { settings.disclosure = try DisclosureSettings.parse(disclosure) }
        return settings
    }
}
