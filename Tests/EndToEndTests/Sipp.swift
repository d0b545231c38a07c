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
