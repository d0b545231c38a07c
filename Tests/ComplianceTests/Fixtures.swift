import Compliance
import Crypto
import Foundation
import Synchronization
import Testing
import TrunklineTestSupport

/// Test time: `sleep` moves the clock forward at once, so a run loop crosses a day without waiting.
final class ManualClock: ComplianceClock {
    private let time: Mutex<Date>

    init(_ start: Date) { time = Mutex(start) }

    var now: Date { time.withLock { $0 } }
    func set(_ date: Date) { time.withLock { $0 = date } }
    func advance(seconds: TimeInterval) { time.withLock { $0 += seconds } }

    func sleep(for duration: Duration) async throws {
        let (seconds, attoseconds) = duration.components
        advance(seconds: TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18)
        await Task.yield()
    }
}

/// Monday 2026-06-15 16:00 UTC: 12:00 in New York, 11:00 in Chicago, 10:00 in Denver/Boise, 09:00 in Los Angeles.
let mondayNoonEastern = Date(timeIntervalSince1970: 1_781_539_200)

func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

enum Backend: String, CaseIterable, Sendable {
    case sqlite
    case postgres
}

/// A store on a fresh database of the given backend, and a way to open more connections to the same database
/// (another process or gateway, or the same one restarted).
struct StoreContext: Sendable {
    let backend: Backend
    let location: StoreLocation
    let clock: ManualClock
    let signingKey: LedgerSigningKey
    let checkpointInterval: Int

    func open() async throws -> ComplianceStore {
        try await ComplianceStore.open(location, ledger: Ledger(signingKey: signingKey, checkpointInterval: checkpointInterval), clock: clock)
    }
}

/// Runs `body` against a new store: a SQLite file in a temp folder, or a PostgreSQL server started for this test
/// and stopped by PID afterwards.
func withStore<T: Sendable>(
    _ backend: Backend, clock: ManualClock = ManualClock(mondayNoonEastern), checkpointInterval: Int = 10,
    _ body: (ComplianceStore, StoreContext) async throws -> T
) async throws -> T {
    let key = LedgerSigningKey(Curve25519.Signing.PrivateKey())
    switch backend {
    case .sqlite:
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-compliance-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let context = StoreContext(backend: backend, location: .sqlite(path: folder.appendingPathComponent("compliance.db").path),
                                   clock: clock, signingKey: key, checkpointInterval: checkpointInterval)
        return try await run(context, body)
    case .postgres:
        let server = try await PostgresServer.start()
        let context = StoreContext(backend: backend, location: .postgres(url: server.url()), clock: clock, signingKey: key,
                                   checkpointInterval: checkpointInterval)
        do {
            let result = try await run(context, body)
            try await server.stop()
            return result
        } catch {
            try? await server.stop()
            throw error
        }
    }
}

private func run<T: Sendable>(_ context: StoreContext, _ body: (ComplianceStore, StoreContext) async throws -> T) async throws -> T {
    let store = try await context.open()
    do {
        let result = try await body(store, context)
        try await store.close()
        return result
    } catch {
        try? await store.close()
        throw error
    }
}

/// Runs raw SQL as someone with database access would (the tamper tests), bypassing the store's API.
func tamper(_ store: ComplianceStore, _ statements: String...) async throws {
    try await store.database.transaction { sql in
        for statement in statements { try await sql.query(statement, []) }
    }
}

/// Drops the append-only triggers, as an attacker with owner rights can; the chain must still catch the edit.
func dropAppendOnlyTriggers(_ store: ComplianceStore) async throws {
    switch store.database.dialect {
    case .sqlite:
        try await tamper(store, "DROP TRIGGER ledger_no_update", "DROP TRIGGER ledger_no_delete",
                         "DROP TRIGGER ledger_checkpoints_no_update", "DROP TRIGGER ledger_checkpoints_no_delete")
    case .postgres:
        try await tamper(store, "DROP TRIGGER ledger_append_only ON ledger", "DROP TRIGGER ledger_checkpoints_append_only ON ledger_checkpoints")
    }
}

func number(_ text: String) -> PhoneNumber { try! PhoneNumber(text) }

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A consent row for the CSV import, with sensible evidence.
func consentCSVRow(_ number: String, type: String = "pewc", seller: String = "Acme Solar LLC", timezone: String = "",
                   at: String = "2026-05-01T15:00:00Z") -> String {
    "\(number),\(timezone),\(type),\(seller),https://acme.example/quote,\(at),\"I agree that Acme Solar LLC may call me, using an AI voice, at this number. Consent is not a condition of purchase.\",ip:203.0.113.7"
}

let consentCSVHeader = "number,timezone,consent_type,seller,source,consented_at,disclosure,evidence"

/// The dialler the scheduler tests use in place of the SIP dialler the gateway will provide: records every call
/// with the (test) time it was placed and answers as told.
actor RecordingDialer: CampaignDialer {
    struct Call: Sendable {
        var request: DialRequest
        var at: Date
    }

    private(set) var calls: [Call] = []
    private let clock: ManualClock
    private let answer: @Sendable (PhoneNumber) -> DialOutcome
    /// Runs during the call, e.g. an opt-out the callee makes while connected.
    private let during: @Sendable (DialRequest) async -> Void

    init(clock: ManualClock, answer: @escaping @Sendable (PhoneNumber) -> DialOutcome = { _ in DialOutcome(.answered, durationSeconds: 30) },
         during: @escaping @Sendable (DialRequest) async -> Void = { _ in }) {
        self.clock = clock
        self.answer = answer
        self.during = during
    }

    func dial(_ request: DialRequest) async -> DialOutcome {
        calls.append(Call(request: request, at: clock.now))
        await during(request)
        return answer(request.number)
    }

    var numbers: [PhoneNumber] { calls.map(\.request.number) }
}
