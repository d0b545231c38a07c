// A gateway stand-in for the crash test: runs one campaign from a SQLite store with a dialler that appends every
// number it is asked to call to a log (fsynced before the call "rings") and, when told, kills its own process with
// SIGKILL right after the Nth dial — a real kill -9 in the middle of a campaign, with calls in flight.
//
// Usage: ComplianceCrashHelper STORE DIAL_LOG CAMPAIGN INSTANCE START_UNIX_SECONDS [KILL_AFTER_DIALS]
import Compliance
import Foundation
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count >= 6, let start = TimeInterval(arguments[5]) else {
    FileHandle.standardError.write(Data("usage: ComplianceCrashHelper STORE DIAL_LOG CAMPAIGN INSTANCE START [KILL_AFTER]\n".utf8))
    exit(2)
}
let killAfter = arguments.count > 6 ? Int(arguments[6]) : nil

/// Campaign time starts at START and moves only when the runner sleeps (plus a real millisecond, so calls overlap).
final class VirtualClock: ComplianceClock {
    private let time: Mutex<Date>
    init(_ start: Date) { time = Mutex(start) }
    var now: Date { time.withLock { $0 } }
    func sleep(for duration: Duration) async throws {
        time.withLock { $0 += TimeInterval(duration.components.seconds) }
        try await Task.sleep(for: .milliseconds(1))
    }
}

final class LoggingDialer: CampaignDialer {
    private let log: Int32
    private let killAfter: Int?
    private let dials = Mutex(0)

    init(path: String, killAfter: Int?) {
        log = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        self.killAfter = killAfter
    }

    func dial(_ request: DialRequest) async -> DialOutcome {
        let line = Array("\(request.number.e164)\n".utf8)
        _ = line.withUnsafeBytes { write(log, $0.baseAddress, $0.count) }
        fsync(log)
        let count = dials.withLock { $0 += 1; return $0 }
        if count == killAfter { kill(getpid(), SIGKILL) }
        try? await Task.sleep(for: .milliseconds(5))
        return DialOutcome(.answered, durationSeconds: 20)
    }
}

let clock = VirtualClock(Date(timeIntervalSince1970: start))
let store = try await ComplianceStore.open(.sqlite(path: arguments[1]), ledger: Ledger(signingKey: nil), clock: clock)
let runner = CampaignRunner(store: store, campaignID: arguments[3], dialer: LoggingDialer(path: arguments[2], killAfter: killAfter),
                            gate: ComplianceGate(rules: try CallingRules.bundled()), instance: arguments[4])
try await runner.run()
try await store.close()
