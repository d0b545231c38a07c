import Crypto
import Foundation

/// The outcome of checking the whole ledger: how much was proven, and the first entry that is not what was written.
public struct LedgerVerification: Sendable, Equatable, CustomStringConvertible {
    public var entries: Int64
    public var checkpoints: Int
    /// Whether checkpoint signatures were checked (a verifying key was given).
    public var signaturesChecked: Bool
    public var problem: LedgerProblem?

    public var isIntact: Bool { problem == nil }

    public var description: String {
        if let problem { return "ledger NOT intact: \(problem)" }
        let signatures = signaturesChecked ? "signatures valid" : "signatures not checked (no key)"
        return "ledger intact: \(entries) entries, \(checkpoints) checkpoints, \(signatures)"
    }
}

/// The first bad entry and what is wrong with it.
public struct LedgerProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        /// The entry's bytes do not hash to its stored hash: a field was changed.
        case edited
        /// This sequence number is absent: the entry was deleted.
        case missing
        /// The entry names a predecessor other than the entry before it: rows were reordered, or the entry before
        /// was rewritten together with its hash.
        case brokenLink = "does not link to the entry before it (reordered, or predecessor rewritten)"
        /// A signed checkpoint names a different hash for this entry: the chain was rewritten from here on.
        case checkpointMismatch = "checkpoint mismatch"
        /// A checkpoint's signature does not verify with the configured key.
        case badSignature = "bad checkpoint signature"
        /// A signed checkpoint covers entries that are no longer there: the tail was cut off.
        case truncated
    }

    public var seq: Int64
    public var reason: Reason

    public init(seq: Int64, reason: Reason) {
        self.seq = seq
        self.reason = reason
    }

    public var description: String { "entry \(seq): \(reason.rawValue)" }
}

extension ComplianceStore {
    /// Recomputes the chain from the genesis entry and checks every checkpoint (and its signature, given a key).
    public func verifyLedger(key: LedgerVerifyingKey?) async throws -> LedgerVerification {
        let checkpoints = try await database.transaction { sql in
            try await sql.query("SELECT seq, head_hash, recorded_at, signature FROM ledger_checkpoints ORDER BY seq")
        }
        var signed: [Int64: (head: [UInt8], recordedAt: Int64, signature: [UInt8])] = [:]
        for row in checkpoints {
            signed[try row.int("seq")] = (try row.bytes("head_hash"), try row.int("recorded_at"), try row.bytes("signature"))
        }
        var result = LedgerVerification(entries: 0, checkpoints: signed.count, signaturesChecked: key != nil)
        var expected: Int64 = 1
        var previous = Ledger.genesis
        let page = 1000
        while true {
            let rows = try await database.transaction { [expected] sql in
                try await sql.query(
                    "SELECT seq, recorded_at, kind, number, body, prev_hash, hash FROM ledger WHERE seq >= ? ORDER BY seq LIMIT ?",
                    .integer(expected), .integer(Int64(page)))
            }
            for row in rows {
                let entry = try LedgerEntry(row: row)
                if let problem = Self.check(entry, expected: expected, previous: previous, signed: signed, key: key) {
                    result.problem = problem
                    return result
                }
                previous = entry.hash
                expected = entry.seq + 1
                result.entries += 1
            }
            if rows.count < page { break }
        }
        if let lastSigned = signed.keys.max(), lastSigned >= expected {
            result.problem = LedgerProblem(seq: expected, reason: .truncated)
        }
        return result
    }

    private static func check(
        _ entry: LedgerEntry, expected: Int64, previous: [UInt8],
        signed: [Int64: (head: [UInt8], recordedAt: Int64, signature: [UInt8])], key: LedgerVerifyingKey?
    ) -> LedgerProblem? {
        guard entry.seq == expected else { return LedgerProblem(seq: expected, reason: .missing) }
        guard entry.previousHash == previous else { return LedgerProblem(seq: entry.seq, reason: .brokenLink) }
        let hash = Ledger.hash(previous: previous, seq: entry.seq, recordedAt: entry.recordedAt, kind: entry.kind,
                               number: entry.number, body: entry.body)
        guard hash == entry.hash else { return LedgerProblem(seq: entry.seq, reason: .edited) }
        if let checkpoint = signed[entry.seq] {
            guard checkpoint.head == hash else { return LedgerProblem(seq: entry.seq, reason: .checkpointMismatch) }
            if let key {
                let message = Ledger.checkpointMessage(seq: entry.seq, head: checkpoint.head, recordedAt: checkpoint.recordedAt)
                guard key.key.isValidSignature(checkpoint.signature, for: message) else {
                    return LedgerProblem(seq: entry.seq, reason: .badSignature)
                }
            }
        }
        return nil
    }
}
