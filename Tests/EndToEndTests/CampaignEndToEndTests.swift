import Foundation
import Testing

/// A campaign driven by `trunkline campaign run` through a running gateway, with sipp as the callees' carrier:
/// only numbers with consent, off every DNC list, are called, and the ledger proves it.
@Suite("Campaign end to end", .serialized)
struct CampaignEndToEndTests {
    /// An IANA zone where it is now early afternoon, so the calling window holds whenever the test runs.
    static func afternoonZone(now: Date = Date()) -> String {
        let utcHour = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: now).hour!
        let offset = 13 - utcHour  // -10 ... +13
        let clamped = max(-12, min(12, offset))
        // Etc/GMT signs are inverted: Etc/GMT-3 is three hours ahead of UTC.
        return clamped == 0 ? "Etc/GMT" : "Etc/GMT\(clamped > 0 ? "-" : "+")\(abs(clamped))"
    }

    /// Runs `trunkline ARGS --config CONFIG`, returning its exit status and output.
    static func trunkline(_ arguments: [String], gateway: GatewayProcess) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: GatewayProcess.binary)
        process.arguments = arguments + ["--config", gateway.directory.appendingPathComponent("trunkline.yaml").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    @Test func onlyConsentedNumbersOffTheDNCListsAreCalled() async throws {
        let consented = ["+12125550101", "+12125550102"]
        let onInternalDNC = "+12125550103"
        let withoutConsent = "+12125550104"
        let callee = try await Sipp.serve(
            scenario: try OutboundCallTests.calleeScenario(callerPattern: "&lt;sip:\\+15552340000@"), calls: consented.count,
            holdMilliseconds: 300)
        defer { callee.stop() }
        // The gateway reads the ledger key at start: make it first (Ed25519, PKCS#8 PEM).
        let key = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-ledger-\(UUID().uuidString).pem").path
        defer { try? FileManager.default.removeItem(atPath: key) }
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["genpkey", "-algorithm", "ed25519", "-out", key]
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: OutboundCallTests.trunk(addresses: ["127.0.0.1:\(callee.port)"]), routes: OutboundCallTests.demoRoute,
            extraConfig: "compliance:\n  store: compliance.db\n  ledger_key: \(key)\n  checkpoint_interval: 5")
        let directory = gateway.directory
        let zone = Self.afternoonZone()
        let consents = (["number,timezone,consent_type,seller,source,consented_at,disclosure"]
            + (consented + [onInternalDNC]).map { "\($0),\(zone),pec,Acme Clinic,ivr,2026-01-05T10:00:00Z,Reminder calls by an automated voice" })
            .joined(separator: "\n")
        try consents.write(to: directory.appendingPathComponent("consents.csv"), atomically: true, encoding: .utf8)
        let contacts = (["number,timezone"] + (consented + [onInternalDNC, withoutConsent]).map { "\($0),\(zone)" }).joined(separator: "\n")
        try contacts.write(to: directory.appendingPathComponent("contacts.csv"), atomically: true, encoding: .utf8)
        try "# empty national extract\n".write(to: directory.appendingPathComponent("national.txt"), atomically: true, encoding: .utf8)
        let today = Date().formatted(.iso8601.year().month().day())

        for step in [
            ["consent", "import", directory.appendingPathComponent("consents.csv").path],
            ["consent", "revoke", onInternalDNC, "--source", "api"],
            ["dnc", "import", directory.appendingPathComponent("national.txt").path, "--list-date", today],
            ["campaign", "create", "reminders", "--purpose", "informational", "--seller", "Acme Clinic", "--trunk", "carrier",
             "--route", "demo", "--from", "+15552340000", "--concurrency", "2", "--cps", "5"],
            ["campaign", "import", "reminders", directory.appendingPathComponent("contacts.csv").path],
        ] {
            let (status, output) = try Self.trunkline(step, gateway: gateway)
            try #require(status == 0, "trunkline \(step.joined(separator: " ")): \(output)")
        }

        let (runStatus, runOutput) = try Self.trunkline(["campaign", "run", "reminders"], gateway: gateway)
        #expect(runStatus == 0, "\(runOutput)")
        let result = await callee.result()
        #expect(result.exitCode == 0, "\(result.output)")

        let records = try await gateway.waitForCallRecords(consented.count)
        #expect(Set(records.compactMap { $0["to"] as? String }) == Set(consented))
        #expect(records.allSatisfy { $0["outcome"] as? String == "answered" })
        #expect(records.allSatisfy { ($0["direction"] as? String) == "outbound-api" })
        #expect(runOutput.contains("internal_dnc") || runOutput.contains("consent_revoked"), "\(runOutput)")
        #expect(runOutput.contains("no_consent"), "\(runOutput)")

        let (verifyStatus, verifyOutput) = try Self.trunkline(["consent", "verify"], gateway: gateway)
        #expect(verifyStatus == 0, "\(verifyOutput)")
        let (exportStatus, export) = try Self.trunkline(["consent", "export", "--number", consented[0]], gateway: gateway)
        #expect(exportStatus == 0)
        #expect(export.contains("dial.decision") && export.contains("call.outcome"), "\(export)")
    }
}
