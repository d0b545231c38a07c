import Crypto
import Foundation

/// What a ledger entry records. Raw values are the stored `kind` column and part of the hashed bytes.
public enum LedgerKind: String, Sendable, CaseIterable {
    case consentGranted = "consent.granted"
    case consentRevoked = "consent.revoked"
    case dialDecision = "dial.decision"
    case callOutcome = "call.outcome"
    case disclosurePlayed = "disclosure.played"
    case dncAdded = "dnc.added"
    case nationalDNCImported = "dnc.national_imported"
}

/// One stored ledger entry, exactly as hashed. `body` is JSON with sorted keys, written once and hashed as stored
/// text, so verification never depends on re-serialising it.
public struct LedgerEntry: Sendable, Equatable {
    public var seq: Int64
    public var recordedAt: Int64
    public var kind: String
    public var number: String?
    public var body: String
    public var previousHash: [UInt8]
    public var hash: [UInt8]

    init(row: SQLRow) throws {
        seq = try row.int("seq")
        recordedAt = try row.int("recorded_at")
        kind = try row.string("kind")
        number = try row.optionalString("number")
        body = try row.string("body")
        previousHash = try row.bytes("prev_hash")
        hash = try row.bytes("hash")
    }
}

/// Writes the hash chain: `hash(n) = SHA-256("trunkline-ledger-v1" ‖ hash(n-1) ‖ seq ‖ recorded_at ‖ kind ‖ number ‖ body)`,
/// each field length-prefixed so no two entries encode alike; the genesis predecessor is 32 zero bytes. Every
/// `checkpointInterval` entries the head is signed (Ed25519) in `ledger_checkpoints`.
///
/// Appends run inside the caller's transaction, so a decision and its ledger entry commit together or not at all.
/// They are serialised by the transaction's write lock (SQLite) or a transaction-scoped advisory lock (PostgreSQL),
/// so `seq` is gapless and every entry names its true predecessor even with several writer processes.
public struct Ledger: Sendable {
    public var signingKey: LedgerSigningKey?
    public var checkpointInterval: Int

    /// Often enough that a rewrite of the tail is caught within minutes of a busy campaign; cheap (one signature).
    public static let defaultCheckpointInterval = 100
    static let genesis = [UInt8](repeating: 0, count: 32)

    public init(signingKey: LedgerSigningKey?, checkpointInterval: Int = Ledger.defaultCheckpointInterval) {
        self.signingKey = signingKey
        self.checkpointInterval = max(1, checkpointInterval)
    }

    @discardableResult
    func append(_ kind: LedgerKind, number: String?, fields: [String: String], at time: Int64, in sql: any SQLExecutor) async throws -> Int64 {
        try await Self.lock(sql)
        let head = try await sql.query("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").first
        let seq = (try head?.int("seq") ?? 0) + 1
        let previous = try head?.bytes("hash") ?? Self.genesis
        let body = Self.encode(fields)
        let hash = Self.hash(previous: previous, seq: seq, recordedAt: time, kind: kind.rawValue, number: number, body: body)
        try await sql.query(
            "INSERT INTO ledger (seq, recorded_at, kind, number, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            .integer(seq), .integer(time), .text(kind.rawValue), SQLValue(number), .text(body), .blob(previous), .blob(hash))
        if seq % Int64(checkpointInterval) == 0 {
            try await checkpoint(seq: seq, head: hash, at: time, in: sql)
        }
        return seq
    }

    /// Signs the current head now (e.g. at the end of an import or campaign); no-op without a key or entries.
    func checkpointHead(at time: Int64, in sql: any SQLExecutor) async throws {
        try await Self.lock(sql)
        guard let head = try await sql.query("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").first else { return }
        let seq = try head.int("seq")
        guard try await sql.query("SELECT seq FROM ledger_checkpoints WHERE seq = ?", .integer(seq)).isEmpty else { return }
        try await checkpoint(seq: seq, head: try head.bytes("hash"), at: time, in: sql)
    }

    private func checkpoint(seq: Int64, head: [UInt8], at time: Int64, in sql: any SQLExecutor) async throws {
        guard let signingKey else { return }
        let signature = try signingKey.key.signature(for: Self.checkpointMessage(seq: seq, head: head, recordedAt: time))
        try await sql.query(
            "INSERT INTO ledger_checkpoints (seq, head_hash, recorded_at, key_id, signature) VALUES (?, ?, ?, ?, ?)",
            .integer(seq), .blob(head), .integer(time), .text(signingKey.verifyingKey.id), .blob(Array(signature)))
    }

    /// Serialises ledger writers across PostgreSQL sessions until the transaction ends (re-entrant per session).
    /// SQLite needs nothing: `BEGIN IMMEDIATE` already holds the database's only write lock.
    static func lock(_ sql: any SQLExecutor) async throws {
        if sql.dialect == .postgres { try await sql.query("SELECT pg_advisory_xact_lock(?)", .integer(Migrations.postgresLockKey)) }
    }

    static func encode(_ fields: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A [String: String] always encodes.
        return String(decoding: (try? encoder.encode(fields)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static func hash(previous: [UInt8], seq: Int64, recordedAt: Int64, kind: String, number: String?, body: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array("trunkline-ledger-v1".utf8))
        hasher.update(data: previous)
        hasher.update(data: bigEndian(UInt64(bitPattern: seq)))
        hasher.update(data: bigEndian(UInt64(bitPattern: recordedAt)))
        for field in [kind, number, body] {
            guard let field else { hasher.update(data: [0]); continue }
            let bytes = Array(field.utf8)
            hasher.update(data: [1] + bigEndian(UInt64(bytes.count)))
            hasher.update(data: bytes)
        }
        return Array(hasher.finalize())
    }

    static func checkpointMessage(seq: Int64, head: [UInt8], recordedAt: Int64) -> [UInt8] {
        Array("trunkline-ledger-checkpoint-v1".utf8) + bigEndian(UInt64(bitPattern: seq)) + head
            + bigEndian(UInt64(bitPattern: recordedAt))
    }

    private static func bigEndian(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }
}
