import Compliance
import Crypto
import Foundation
import Testing

/// The hash chain and checkpoints, on both stores: intact when untouched, and any edit, deletion, reordering,
/// rewrite or truncation names the first bad entry.
@Suite struct LedgerTests {
    /// 25 entries (checkpoints every 10): 20 consents granted, then 5 revocations with their DNC entries.
    private func fill(_ store: ComplianceStore) async throws {
        let csv = ([consentCSVHeader] + (0..<20).map { consentCSVRow("+1212555\(String(format: "%04d", $0))") }).joined(separator: "\n")
        let report = try await store.importConsents(csv: csv)
        #expect(report.imported == 20)
        for index in 0..<2 { try await store.revokeConsent(number: number("+1212555\(String(format: "%04d", index))"), source: .api) }
        try await store.recordDisclosure(number: number("+12125550003"), campaignID: nil, attemptID: nil, callSid: "CA0", prompt: "acme-intro-v1")
    }

    @Test(arguments: Backend.allCases)
    func untouchedLedgerVerifies(backend: Backend) async throws {
        try await withStore(backend) { store, context in
            try await fill(store)
            let result = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(result.isIntact, "\(result)")
            #expect(result.entries == 25)
            #expect(result.checkpoints == 2)
            #expect(result.signaturesChecked)
        }
    }

    @Test(arguments: Backend.allCases)
    func appendOnlyTriggersRefuseEdits(backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            try await fill(store)
            await #expect(throws: (any Error).self) { try await tamper(store, "UPDATE ledger SET kind = 'x' WHERE seq = 3") }
            await #expect(throws: (any Error).self) { try await tamper(store, "DELETE FROM ledger WHERE seq = 3") }
        }
    }

    @Test(arguments: Backend.allCases)
    func editedRowIsNamed(backend: Backend) async throws {
        try await withStore(backend) { store, context in
            try await fill(store)
            try await dropAppendOnlyTriggers(store)
            try await tamper(store, "UPDATE ledger SET body = REPLACE(body, 'pewc', 'pec') WHERE seq = 7")
            let result = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(result.problem == LedgerProblem(seq: 7, reason: .edited), "\(result)")
            #expect(result.entries == 6)
        }
    }

    @Test(arguments: Backend.allCases)
    func deletedRowIsNamed(backend: Backend) async throws {
        try await withStore(backend) { store, context in
            try await fill(store)
            try await dropAppendOnlyTriggers(store)
            try await tamper(store, "DELETE FROM ledger WHERE seq = 12")
            let result = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(result.problem == LedgerProblem(seq: 12, reason: .missing), "\(result)")
        }
    }

    @Test(arguments: Backend.allCases)
    func reorderedRowsAreNamed(backend: Backend) async throws {
        try await withStore(backend) { store, context in
            try await fill(store)
            try await dropAppendOnlyTriggers(store)
            try await tamper(store,
                             "UPDATE ledger SET seq = -1 WHERE seq = 15", "UPDATE ledger SET seq = 15 WHERE seq = 16",
                             "UPDATE ledger SET seq = 16 WHERE seq = -1")
            let result = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(result.problem == LedgerProblem(seq: 15, reason: .brokenLink), "\(result)")
        }
    }

    /// An attacker who edits an entry and recomputes every later hash still leaves the signed checkpoints behind.
    @Test(arguments: Backend.allCases)
    func rewrittenChainFailsAtTheCheckpoint(backend: Backend) async throws {
        try await withStore(backend) { store, context in
            try await fill(store)
            try await dropAppendOnlyTriggers(store)
            try await rewriteChain(store, from: 4, body: "{\"forged\":\"yes\"}")
            let result = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(result.problem == LedgerProblem(seq: 10, reason: .checkpointMismatch), "\(result)")

            // Forged checkpoints need the key: with another key's signature the signature check fails.
            let forger = LedgerSigningKey(Curve25519.Signing.PrivateKey())
            let forged = try await ComplianceStore(database: store.database, ledger: Ledger(signingKey: forger), clock: context.clock)
            try await tamper(store, "DELETE FROM ledger_checkpoints")
            try await forged.checkpointLedger()
            let second = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(second.problem == LedgerProblem(seq: 25, reason: .badSignature), "\(second)")
        }
    }

    @Test(arguments: Backend.allCases)
    func truncatedTailIsDetected(backend: Backend) async throws {
        try await withStore(backend) { store, context in
            try await fill(store)
            try await dropAppendOnlyTriggers(store)
            try await tamper(store, "DELETE FROM ledger WHERE seq > 18")
            let result = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(result.problem == LedgerProblem(seq: 19, reason: .truncated), "\(result)")
        }
    }

    /// Writers in separate connections (as separate processes would be) never fork or reorder the chain.
    @Test(arguments: Backend.allCases)
    func concurrentWritersKeepOneChain(backend: Backend) async throws {
        try await withStore(backend) { store, context in
            let other = try await context.open()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (writer, offset) in [(store, 0), (other, 5000)] {
                    group.addTask {
                        for index in 0..<40 {
                            try await writer.addInternalDNC(number("+1303555\(String(format: "%04d", offset + index))"), source: "test")
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await other.close()
            let result = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(result.isIntact, "\(result)")
            #expect(result.entries == 80)
        }
    }

    @Test(arguments: Backend.allCases)
    func exportSelectsByNumberAndDate(backend: Backend) async throws {
        try await withStore(backend) { store, context in
            try await fill(store)
            context.clock.advance(seconds: 86_400)
            try await store.revokeConsent(number: number("+12125550005"), source: .dtmfOptOut, detail: "pressed 9")
            var lines: [String] = []
            try await store.exportLedger(LedgerExportFilter(number: number("+12125550005"))) { lines.append($0) }
            let kinds = try lines.map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8))["kind"] ?? "" }
            #expect(kinds == ["consent.granted", "consent.revoked", "dnc.added"])
            var tomorrow: [String] = []
            let since = Int64(context.clock.now.timeIntervalSince1970)
            try await store.exportLedger(LedgerExportFilter(from: since)) { tomorrow.append($0) }
            #expect(tomorrow.count == 2)
            #expect(tomorrow.allSatisfy { $0.contains("+12125550005") })
        }
    }

    /// Recomputes hashes from `seq` on with a changed body there, as a forger with the schema in hand would.
    private func rewriteChain(_ store: ComplianceStore, from seq: Int64, body: String) async throws {
        try await store.database.transaction { sql in
            let rows = try await sql.query("SELECT seq, recorded_at, kind, number, body FROM ledger WHERE seq >= ? ORDER BY seq", [.integer(seq)])
            guard case .blob(var previous)? = try await sql.query("SELECT hash FROM ledger WHERE seq = ?", [.integer(seq - 1)]).first?.values["hash"]
            else { throw TestFailure("no predecessor") }
            for row in rows {
                guard case .integer(let s) = row.values["seq"], case .integer(let at) = row.values["recorded_at"],
                      case .text(let kind) = row.values["kind"], case .text(var text) = row.values["body"] else { continue }
                if s == seq { text = body }
                var number: String?
                if case .text(let n) = row.values["number"] { number = n }
                let hash = ledgerHash(previous: previous, seq: s, recordedAt: at, kind: kind, number: number, body: text)
                try await sql.query("UPDATE ledger SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                                    [.text(text), .blob(previous), .blob(hash), .integer(s)])
                previous = hash
            }
        }
    }

    /// The documented chain formula, restated independently of the store's code.
    private func ledgerHash(previous: [UInt8], seq: Int64, recordedAt: Int64, kind: String, number: String?, body: String) -> [UInt8] {
        func be(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }
        var bytes = Array("trunkline-ledger-v1".utf8) + previous + be(UInt64(bitPattern: seq)) + be(UInt64(bitPattern: recordedAt))
        for field in [kind, number, body] {
            if let field { bytes += [1] + be(UInt64(field.utf8.count)) + Array(field.utf8) } else { bytes += [0] }
        }
        return Array(SHA256.hash(data: bytes))
    }
}
