import Compliance
import Foundation
import Testing

/// The `trunkline` binary's consent, dnc and campaign commands against a SQLite store, as an operator runs them.
@Suite struct CommandLineTests {
    static var binary: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/trunkline").path
    }

    /// Runs `trunkline ARGS --config CONFIG` and returns its exit status and combined output.
    static func trunkline(_ arguments: [String], config: String?) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments + (config.map { ["--config", $0] } ?? [])
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-cli-\(UUID().uuidString).out")
        guard FileManager.default.createFile(atPath: output.path, contents: nil) else { throw TestFailure("cannot create \(output.path)") }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        defer { try? FileManager.default.removeItem(at: output) }
        return (process.terminationStatus, try String(contentsOf: output, encoding: .utf8))
    }

    @Test func importVerifyTamperExportAndCampaignStatus() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("\(Self.binary) is missing: build it first (`make test` does)")
            return
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = { (name: String) in folder.appendingPathComponent(name).path }
        let dialplan = URL(fileURLWithPath: Self.binary).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("dialplans/demo.yaml").path
        try """
            compliance: { store: compliance.db, ledger_key: ledger.pem, checkpoint_interval: 5 }
            trunks:
              - name: local
                allow: [127.0.0.0/8]
            dialplan: \(dialplan)

            """.write(toFile: path("trunkline.yaml"), atomically: true, encoding: .utf8)
        let config = path("trunkline.yaml")
        #expect(try Self.trunkline(["consent", "keygen", path("ledger.pem")], config: nil).status == 0)

        let rows = [consentCSVHeader] + (0..<12).map { consentCSVRow("+1212555\(String(format: "%04d", $0))") } + ["+1212, bad row"]
        try rows.joined(separator: "\n").write(toFile: path("consents.csv"), atomically: true, encoding: .utf8)
        let imported = try Self.trunkline(["consent", "import", path("consents.csv")], config: config)
        #expect(imported.status == 1)
        #expect(imported.output.contains("imported 12") && imported.output.contains("row 14, *:"), "\(imported.output)")

        #expect(try Self.trunkline(["consent", "revoke", "+12125550003", "--source", "agent_opt_out"], config: config).status == 0)
        let intact = try Self.trunkline(["consent", "verify"], config: config)
        #expect(intact.status == 0 && intact.output.contains("ledger intact: 14 entries"), "\(intact.output)")

        let exported = try Self.trunkline(["consent", "export", "--number", "+12125550003", "--output", path("audit.jsonl")], config: config)
        #expect(exported.status == 0)
        #expect(try String(contentsOfFile: path("audit.jsonl"), encoding: .utf8).split(separator: "\n").count == 3)

        try "+12125550004\n".write(toFile: path("dnc.txt"), atomically: true, encoding: .utf8)
        #expect(try Self.trunkline(["dnc", "import", path("dnc.txt"), "--list-date", "2026-06-01"], config: config).status == 0)
        #expect(try Self.trunkline(["campaign", "create", "june", "--purpose", "marketing", "--seller", "Acme Solar LLC",
                                    "--trunk", "local", "--from", "+12125559999", "--cps", "2"], config: config).status == 0)
        try "number\n+12125550001\n+12125550002\n".write(toFile: path("contacts.csv"), atomically: true, encoding: .utf8)
        #expect(try Self.trunkline(["campaign", "import", "june", path("contacts.csv")], config: config).status == 0)
        let status = try Self.trunkline(["campaign", "status", "june"], config: config)
        #expect(status.output.contains("contacts 2  remaining 2"), "\(status.output)")

        // Someone with the database file edits entry 6: verify fails and names it.
        let store = try await ComplianceStore.open(.sqlite(path: path("compliance.db")), ledger: Ledger(signingKey: nil))
        try await dropAppendOnlyTriggers(store)
        try await tamper(store, "UPDATE ledger SET recorded_at = recorded_at - 86400 WHERE seq = 6")
        try await store.close()
        let tampered = try Self.trunkline(["consent", "verify"], config: config)
        #expect(tampered.status == 1 && tampered.output.contains("entry 6: edited"), "\(tampered.output)")
    }
}
