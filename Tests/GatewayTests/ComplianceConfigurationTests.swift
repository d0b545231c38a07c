import Compliance
import Foundation
@testable import Gateway
import Testing

extension ConfigurationTests {
    @Test func complianceSectionIsOptionalAndDefaults() throws {
        #expect(try load(minimal).compliance == nil)
        let settings = try #require(try load("compliance: {}\n" + minimal).compliance)
        #expect(settings.callingWindow == .federal)
        #expect(settings.nationalDNCMaxAgeDays == 31)
        #expect(settings.checkpointInterval == Ledger.defaultCheckpointInterval)
        #expect(settings.ledgerKeyPath == nil)
        guard case .sqlite(let path) = settings.store else { Issue.record("default store is not SQLite"); return }
        #expect(path.hasSuffix("run/compliance.db"))
    }

    @Test func complianceSectionParses() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let keyPath = folder.appendingPathComponent("ledger.pem").path
        try LedgerSigningKey.generate().pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
        let config = try load("""
            compliance:
              store: postgres://trunkline:secret@db.internal:5433/compliance
              ledger_key: \(keyPath)
              checkpoint_interval: 50
              calling_window: "09:00-20:00"
              national_dnc_max_age_days: 30
              recheck_interval_s: 600
              instance: gw-east-1

            """ + minimal)
        let settings = try #require(config.compliance)
        #expect(settings.store == .postgres(url: "postgres://trunkline:secret@db.internal:5433/compliance"))
        #expect(!settings.store.description.contains("secret"))
        #expect(settings.ledgerKeyPath == keyPath)
        #expect(settings.checkpointInterval == 50)
        #expect(settings.callingWindow == CallingWindow(start: 9 * 60, end: 20 * 60))
        #expect(settings.nationalDNCMaxAgeDays == 30)
        #expect(settings.recheckSeconds == 600)
        #expect(settings.instance == "gw-east-1")
    }

    @Test func badComplianceValuesNameTheirLine() {
        expectError("compliance:\n  calling_window: '07:00-21:00'\n" + minimal, line: 2, containing: "outside 08:00-21:00")
        expectError("compliance:\n  calling_window: 'eight to nine'\n" + minimal, line: 2, containing: "is not HH:MM-HH:MM")
        expectError("compliance:\n  national_dnc_max_age_days: 45\n" + minimal, line: 2, containing: "45")
        expectError("compliance:\n  ledger_key: /nonexistent/key.pem\n" + minimal, line: 2, containing: "cannot read ledger signing key")
        expectError("compliance:\n  store: postgres://nohost\n" + minimal, line: 2, containing: "postgres://user")
        expectError("compliance:\n  stor: x.db\n" + minimal, line: 2, containing: "unknown key 'stor'")
    }
}
