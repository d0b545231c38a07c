import Foundation

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

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sipp")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let watcher = OutputWatcher()
        watcher.attach(pipe)
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in
                // Let the pipe drain: the handler runs once sipp has exited and closed its end.
                let rest = pipe.fileHandleForReading.readDataToEndOfFile()
                continuation.resume(returning: Result(
                    exitCode: process.terminationStatus, output: watcher.text + String(decoding: rest, as: UTF8.self)))
            }
            do {
                try process.run()
            } catch {
                continuation.resume(throwing: HarnessError("cannot start sipp: \(error)"))
            }
        }
    }
}
