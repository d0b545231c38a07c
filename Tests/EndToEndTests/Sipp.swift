import Foundation
import TrunklineTestSupport

/// sipp (Debian's sip-tester), the caller in these tests, run in the foreground with `-nostdin`:
/// exit code 0 means every call followed its scenario.
struct Sipp {
    struct Result {
        var exitCode: Int32
        var output: String
    }

    static var scenarios: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("scenarios")
    }

    /// Runs `scenario` against the gateway; `keys` become `[name]` substitutions in the scenario.
    static func run(
        scenario: String, gatewayPort: Int, service: String, calls: Int = 1, concurrent: Int = 1, rate: Int = 10,
        holdMilliseconds: Int = 1000, keys: [String: String] = [:], transport: String = "u1", timeoutSeconds: Int = 60
    ) async throws -> Result {
        let localPort = try FreePort.sipPort()
        let mediaPort = try FreePort.udpPort()
        var arguments = [
            "-sf", scenario.hasPrefix("/") ? scenario : scenarios.appendingPathComponent(scenario).path,
            "-i", "127.0.0.1", "-p", "\(localPort)", "-mi", "127.0.0.1", "-mp", "\(mediaPort)",
            "-s", service, "-m", "\(calls)", "-l", "\(concurrent)", "-r", "\(rate)", "-d", "\(holdMilliseconds)",
            "-t", transport, "-nostdin", "-timeout", "\(timeoutSeconds)s", "-timeout_error",
            "-trace_err", "-error_file", "/dev/stderr", "-max_socket", "1000",
        ]
        for (key, value) in keys.sorted(by: { $0.key < $1.key }) { arguments += ["-key", key, value] }
        arguments.append("127.0.0.1:\(gatewayPort)")
        return try await launch(arguments).result()
    }

    /// sipp as the far end of a trunk (a UAS on a free port) for calls the gateway places; it exits after
    /// `calls` calls. Returns once it listens.
    static func serve(
        scenario: String, port: Int? = nil, calls: Int = 1, holdMilliseconds: Int = 1000, keys: [String: String] = [:],
        timeoutSeconds: Int = 60
    ) async throws -> Running {
        let port = try port ?? FreePort.sipPort()
        var arguments = [
            "-sf", scenario.hasPrefix("/") ? scenario : scenarios.appendingPathComponent(scenario).path,
            "-i", "127.0.0.1", "-p", "\(port)", "-mi", "127.0.0.1", "-mp", "\(try FreePort.udpPort())",
            "-m", "\(calls)", "-d", "\(holdMilliseconds)", "-t", "u1", "-nostdin", "-timeout", "\(timeoutSeconds)s",
            "-timeout_error", "-trace_err", "-error_file", "/dev/stderr",
        ]
        for (key, value) in keys.sorted(by: { $0.key < $1.key }) { arguments += ["-key", key, value] }
        let running = try launch(arguments, port: port)
        // sipp prints nothing when it has bound its socket: the port turning busy is the event.
        for _ in 0..<500 where !FreePort.isBusy(udp: port) {
            try await Task.sleep(for: .milliseconds(10))
        }
        guard FreePort.isBusy(udp: port) else {
            running.stop()
            throw HarnessError("sipp did not bind port \(port): \(await running.result().output)")
        }
        return running
    }

    /// A sipp process and its collected output.
    final class Running: @unchecked Sendable {
        let port: Int
        private let process: Process
        private let exit: Task<Result, Never>

        fileprivate init(process: Process, port: Int, exit: Task<Result, Never>) {
            self.process = process
            self.port = port
            self.exit = exit
        }

        /// Waits for sipp to exit.
        func result() async -> Result { await exit.value }

        /// Stops it by PID (a test that failed before sipp's calls ended).
        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    private static func launch(_ arguments: [String], port: Int = 0) throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sipp")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let watcher = OutputWatcher()
        watcher.attach(pipe)
        let (stream, continuation) = AsyncStream<Result>.makeStream()
        process.terminationHandler = { process in
            // Let the pipe drain: the handler runs once sipp has exited and closed its end.
            let rest = pipe.fileHandleForReading.readDataToEndOfFile()
            continuation.yield(Result(exitCode: process.terminationStatus, output: watcher.text + String(decoding: rest, as: UTF8.self)))
            continuation.finish()
        }
        do {
            try process.run()
        } catch {
            throw HarnessError("cannot start sipp: \(error)")
        }
        let exit = Task { await stream.first { _ in true } ?? Result(exitCode: -1, output: watcher.text) }
        return Running(process: process, port: port, exit: exit)
    }
}

extension Sipp {
    /// How a `callScenario` caller ends the call.
    enum Ending: String {
        /// Wait for the gateway's BYE (the test's agent hangs up once it has seen what it waits for).
        case awaitBye = "await_bye"
        /// Hang up after its part.
        case callerBye = "caller_bye"
    }

    /// Writes `call.xml.template` filled in — the offer's m= section, the caller's part after the ACK (a pcap play,
    /// INFOs to send or receive) and the ending — into `directory`, returning its path.
    static func callScenario(media: String, part: String, ending: Ending, in directory: URL, name: String) throws -> String {
        let template = try String(contentsOf: scenarios.appendingPathComponent("call.xml.template"), encoding: .utf8)
        let end = try String(contentsOf: scenarios.appendingPathComponent("\(ending.rawValue).xml.fragment"), encoding: .utf8)
        let path = directory.appendingPathComponent("\(name).xml").path
        try template.replacingOccurrences(of: "OFFER_MEDIA", with: media).replacingOccurrences(of: "KEYS", with: part)
            .replacingOccurrences(of: "ENDING", with: end)
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// One copy of `fragment` (a file in scenarios/) per key, with `KEY` and `CSEQ` filled in.
    static func perKey(_ fragment: String, keys: String, firstCSeq: Int = 2) throws -> String {
        let text = try String(contentsOf: scenarios.appendingPathComponent(fragment), encoding: .utf8)
        return keys.enumerated().map { index, key in
            text.replacingOccurrences(of: "CSEQ", with: "\(firstCSeq + index)").replacingOccurrences(of: "KEY", with: String(key))
        }.joined()
    }
}
