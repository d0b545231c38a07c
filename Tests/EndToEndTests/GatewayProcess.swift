import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOConcurrencyHelpers
import TrunklineTestSupport

/// The real `trunkline` binary, started on a generated config with free ports, stopped by PID.
final class GatewayProcess: @unchecked Sendable {
    let sipPort: Int
    let adminPort: Int
    let directory: URL
    let callRecordsPath: String
    private var process = Process()
    private let output = OutputWatcher()

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var binary: String {
        packageRoot.appendingPathComponent(".build/debug/trunkline").path
    }

    /// Writes `trunkline.yaml` and `dialplan.yaml` into a fresh temp folder and starts the gateway on them.
    /// `trunks` and `routes` are YAML list items (already indented by two spaces).
    /// `extraConfig` is appended to `trunkline.yaml` (top-level sections such as `compliance:`); `sipExtra` goes
    /// into the `sip:` mapping (e.g. `limits: {…}`, `tls: {…}`); `media` adds keys to the
    /// `media:` mapping (e.g. `inactivity_timeout_s: 1`).
    init(rtpPorts: ClosedRange<Int>, trunks: String, routes: String, extraConfig: String = "", sipExtra: String = "", media: String = "") async throws {
        sipPort = try FreePort.sipPort()
        adminPort = try FreePort.sipPort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        callRecordsPath = directory.appendingPathComponent("calls.jsonl").path
        let config = """
            sip: { listen: 127.0.0.1, port: \(sipPort)\(sipExtra.isEmpty ? "" : ", " + sipExtra) }
            admin: { listen: 127.0.0.1, port: \(adminPort), auth_token: test-token }
            media: { address: 127.0.0.1, rtp_ports: \(rtpPorts.lowerBound)-\(rtpPorts.upperBound)\(media.isEmpty ? "" : ", " + media) }
            call_records: \(callRecordsPath)
            prompts: \(Self.packageRoot.appendingPathComponent("prompts").path)
            agent_connect_timeout_ms: 2000
            trunks:
            \(trunks)
            dialplan: dialplan.yaml
            \(extraConfig)

            """
        try config.write(to: directory.appendingPathComponent("trunkline.yaml"), atomically: true, encoding: .utf8)
        try "routes:\n\(routes)\n".write(to: directory.appendingPathComponent("dialplan.yaml"), atomically: true, encoding: .utf8)

        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw HarnessError("\(Self.binary) is missing: build it first (`make test` does)")
        }
        try await launch()
    }

    /// Starts `trunkline serve` on the folder's config and waits until SIP and the admin API listen.
    private func launch() async throws {
        // Counted, not just found: after a restart the first start's lines are still in the output.
        let before = output.text
        let (ready, admin) = (Self.occurrences(before, of: "trunkline ready"), Self.occurrences(before, of: "admin API listening"))
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--config", directory.appendingPathComponent("trunkline.yaml").path, "--log-level", "debug"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        output.attach(pipe)
        try process.run()
        do {
            // The admin API starts on its own task: tests that use it need it listening too.
            try await output.waitForLine(matching: {
                Self.occurrences($0, of: "trunkline ready") > ready && Self.occurrences($0, of: "admin API listening") > admin
            },
                                         timeout: 30, what: "'trunkline ready' and 'admin API listening'")
        } catch {
            stop()
            throw HarnessError("gateway did not start: \(error)\n\(output.text)")
        }
    }

    static func occurrences(_ text: String, of line: String) -> Int { text.components(separatedBy: line).count - 1 }

    /// kill -9: the gateway dies at once, calls in flight and all, writing nothing more.
    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Starts the gateway again on the same folder (config, records, store) after `kill9` or `stop`.
    func restart() async throws {
        try await launch()
    }

    var log: String { output.text }

    /// Waits until the gateway logs a line containing `text`.
    func waitForLog(_ text: String, timeout: Double = 20) async throws {
        try await output.waitForLine(containing: text, timeout: timeout)
    }

    /// The call records written so far, one dictionary per line.
    func callRecords() throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: callRecordsPath) else { return [] }
        return try String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// What the admin API's `GET /metrics` shows now (Prometheus text).
    func metrics() async throws -> String {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(adminPort)/metrics")!)
        guard (response as? HTTPURLResponse)?.statusCode == 200 else { throw HarnessError("GET /metrics: \(response)") }
        return String(decoding: data, as: UTF8.self)
    }

    /// Waits for `count` call records. The gateway logs "call ended" right after writing each one, so the file is
    /// checked whenever its log grows.
    func waitForCallRecords(_ count: Int, timeout: Double = 30) async throws -> [[String: Any]] {
        try await output.waitForLine(matching: { _ in ((try? self.callRecords().count) ?? 0) >= count }, timeout: timeout, what: "\(count) call records")
        return try callRecords()
    }

    /// SIGTERM, then wait for the process to exit.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Collects a child's output and wakes waiters when a line they want appears.
final class OutputWatcher: Sendable {
    private struct State {
        var text = ""
        var waiters: [(id: UUID, predicate: @Sendable (String) -> Bool, continuation: CheckedContinuation<Void, Error>)] = []
    }
    private let state = NIOLockedValueBox(State())

    var text: String { state.withLockedValue { $0.text } }

    func attach(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            let ready = state.withLockedValue { state in
                state.text += String(decoding: data, as: UTF8.self)
                let text = state.text
                let (done, waiting) = state.waiters.reduce(into: ([CheckedContinuation<Void, Error>](), [(id: UUID, predicate: @Sendable (String) -> Bool, continuation: CheckedContinuation<Void, Error>)]())) { acc, waiter in
                    if waiter.predicate(text) { acc.0.append(waiter.continuation) } else { acc.1.append(waiter) }
                }
                state.waiters = waiting
                return done
            }
            ready.forEach { $0.resume() }
        }
    }

    func waitForLine(containing needle: String, timeout: Double) async throws {
        try await waitForLine(matching: { $0.contains(needle) }, timeout: timeout, what: "'\(needle)'")
    }

    /// Waits until `predicate` holds for the output so far (checked now and whenever output arrives).
    func waitForLine(matching predicate: @escaping @Sendable (String) -> Bool, timeout: Double, what: String = "condition") async throws {
        let id = UUID()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    let satisfied = self.state.withLockedValue { state in
                        if predicate(state.text) { return true }
                        state.waiters.append((id, predicate, continuation))
                        return false
                    }
                    if satisfied { continuation.resume() }
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(timeout))
                let continuation = self.state.withLockedValue { state -> CheckedContinuation<Void, Error>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                let error = HarnessError("timed out after \(timeout)s waiting for \(what)")
                continuation?.resume(throwing: error)
                // This task may finish first: it must fail too, or the wait would pass on a timeout.
                throw error
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

