import Foundation
import Testing
import TrunklineTestSupport

/// Where a campaign test keeps its compliance data: a SQLite file next to the gateway's config, or a PostgreSQL
/// server started for the test (stopped by PID).
enum CampaignStoreBackend: String, CaseIterable, Sendable {
    case sqlite
    case postgres
}

/// A campaign driven by `trunkline campaign run` through a running gateway, with sipp as the callees' carrier:
/// only numbers with consent, off every DNC list, are called, each hears the disclosure, and the ledger proves it.
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

    /// A fresh Ed25519 ledger key (PKCS#8 PEM), made before the gateway starts since it reads the key then.
    static func makeLedgerKey() throws -> String {
        let key = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-ledger-\(UUID().uuidString).pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["genpkey", "-algorithm", "ed25519", "-out", key]
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw HarnessError("openssl genpkey failed") }
        return key
    }

    /// The `compliance:` section: a short disclosure (one spoken digit, so calls stay short) and the opt-out key 9.
    static func complianceConfig(store: String, key: String, instance: String = "gw-test", afterOptOut: String = "hangup") -> String {
        """
        compliance:
          store: \(store)
          ledger_key: \(key)
          checkpoint_interval: 5
          instance: \(instance)
          disclosure: { prompt: digit-1, opt_out_key: "9", opt_out_prompt: goodbye, after_opt_out: \(afterOptOut) }
        """
    }

    /// Runs `body` with a store location for `backend` (a PostgreSQL server lives as long as the body).
    static func withStore<T>(_ backend: CampaignStoreBackend, _ body: (String) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite:
            return try await body("compliance.db")
        case .postgres:
            let server = try await PostgresServer.start()
            do {
                let result = try await body(server.url())
                try await server.stop()
                return result
            } catch {
                try? await server.stop()
                throw error
            }
        }
    }

    static func consentRows(_ numbers: [String], zone: String) -> String {
        (["number,timezone,consent_type,seller,source,consented_at,disclosure"]
            + numbers.map { "\($0),\(zone),pec,Acme Clinic,ivr,2026-01-05T10:00:00Z,Reminder calls by an automated voice" })
            .joined(separator: "\n")
    }

    static func contactRows(_ numbers: [String], zone: String) -> String {
        (["number,timezone"] + numbers.map { "\($0),\(zone)" }).joined(separator: "\n")
    }

    /// An exported entry's body (JSON text as hashed), parsed.
    static func body(_ entry: [String: Any]?) -> [String: Any] {
        (entry?["body"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
    }

    /// The ledger entries `trunkline consent export` writes for one number, in ledger order.
    static func ledger(of number: String, gateway: GatewayProcess) throws -> [[String: Any]] {
        let (status, export) = try trunkline(["consent", "export", "--number", number], gateway: gateway)
        guard status == 0 else { throw HarnessError("consent export failed: \(export)") }
        return export.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test(arguments: CampaignStoreBackend.allCases)
    func onlyConsentedNumbersOffTheDNCListsAreCalled(backend: CampaignStoreBackend) async throws {
        let consented = ["+12125550101", "+12125550102"]
        let onInternalDNC = "+12125550103"
        let withoutConsent = "+12125550104"
        // The callee holds long enough for the disclosure (one spoken digit) to play in full.
        let callee = try await Sipp.serve(
            scenario: try OutboundCallTests.calleeScenario(callerPattern: "&lt;sip:\\+15552340000@"), calls: consented.count,
            holdMilliseconds: 1500)
        defer { callee.stop() }
        let key = try Self.makeLedgerKey()
        defer { try? FileManager.default.removeItem(atPath: key) }
        try await Self.withStore(backend) { store in
            let gateway = try await GatewayProcess(
                rtpPorts: try FreePort.udpRange(count: 10),
                trunks: OutboundCallTests.trunk(addresses: ["127.0.0.1:\(callee.port)"]), routes: OutboundCallTests.demoRoute,
                extraConfig: Self.complianceConfig(store: store, key: key))
            let directory = gateway.directory
            let zone = Self.afternoonZone()
            try Self.consentRows(consented + [onInternalDNC], zone: zone)
                .write(to: directory.appendingPathComponent("consents.csv"), atomically: true, encoding: .utf8)
            try Self.contactRows(consented + [onInternalDNC, withoutConsent], zone: zone)
                .write(to: directory.appendingPathComponent("contacts.csv"), atomically: true, encoding: .utf8)
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
            for number in consented {
                let entries = try Self.ledger(of: number, gateway: gateway)
                let kinds = entries.compactMap { $0["kind"] as? String }
                // Decision, then the disclosure as it played, then the outcome.
                #expect(kinds.filter { $0 != "consent.granted" } == ["dial.decision", "disclosure.played", "call.outcome"], "\(entries)")
                let decision = Self.body(entries.first { $0["kind"] as? String == "dial.decision" })
                let disclosure = Self.body(entries.first { $0["kind"] as? String == "disclosure.played" })
                #expect(disclosure["attempt_id"] as? String == decision["attempt_id"] as? String)
                #expect(disclosure["campaign_id"] as? String == "reminders")
                #expect(disclosure["prompt"] as? String == "digit-1")
                let record = records.first { $0["to"] as? String == number }
                #expect(disclosure["call_sid"] as? String == record?["call_sid"] as? String)
            }
        }
    }
}
