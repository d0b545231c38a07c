import Compliance
import Foundation
import Testing

/// kill -9 of a real process mid-campaign, then a restart: nobody is dialled twice and the ledger verifies.
@Suite struct CrashRestartTests {
    static var helper: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/ComplianceCrashHelper").path
    }

    /// Runs the helper to its end and returns how it ended (exit status, or the signal that killed it).
    static func runHelper(_ arguments: [String]) throws -> (reason: Process.TerminationReason, status: Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: helper)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return (process.terminationReason, process.terminationStatus)
    }

    @Test func killedMidCampaignThenRestartedDialsNobodyTwice() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.helper) else {
            Issue.record("\(Self.helper) is missing: build the package first (`swift build --build-tests`)")
            return
        }
        let clock = ManualClock(mondayNoonEastern)
        try await withStore(.sqlite, clock: clock) { store, context in
            try await SchedulerTests.prepare(store, campaign: "crash", concurrency: 4, callsPerSecond: 4)
            try await store.setCampaignState("crash", .running)
            guard case .sqlite(let path) = context.location else { return }
            let log = path + ".dials"
            let start = String(Int(mondayNoonEastern.timeIntervalSince1970))

            let killed = try Self.runHelper([path, log, "crash", "gw-1", start, "30"])
            #expect(killed.reason == .uncaughtSignal && killed.status == SIGKILL)
            let beforeRestart = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            // The 30th dial kills the process; calls dialled concurrently may have logged a line just before.
            #expect(beforeRestart.count >= 30 && beforeRestart.count < 34)
            let open = try await store.database.transaction { sql in
                try await sql.query("SELECT number FROM attempts WHERE ended_at IS NULL", [])
            }
            #expect(!open.isEmpty, "the kill should leave calls in flight")

            let restarted = try Self.runHelper([path, log, "crash", "gw-1", start])
            #expect(restarted.reason == .exit && restarted.status == 0)

            let dialled = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(dialled.count == Set(dialled).count, "a contact was dialled twice")
            let status = try await store.campaignStatus("crash")
            #expect(status.remaining == 0 && status.dialing == 0)
            #expect(status.dispositions["interrupted"] == open.count)
            // Every allowed contact is either dialled once or closed as interrupted (claimed, maybe never rung).
            let valid = Set((0..<200).map(SchedulerTests.contact).filter { $0.1 == .valid }.map(\.0.e164))
            #expect(Set(dialled).isSubset(of: valid))
            #expect(status.dispositions["answered", default: 0] + open.count == valid.count)
            let verification = try await store.verifyLedger(key: context.signingKey.verifyingKey)
            #expect(verification.isIntact, "\(verification)")
        }
    }
}
