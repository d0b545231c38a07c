import Foundation
import Media
import NIOConcurrencyHelpers
import TrunklineTestSupport

/// baresip (Debian's `baresip-core`), a real softphone, run headless: its config folder is generated here, its
/// microphone is a WAV file (`aufile`), its speaker a dead end (`aubridge`), and the `sndfile` filter writes what
/// it decoded from the far end to a WAV file the test reads afterwards. It dials once, from `-e`, or answers
/// a call to `user` (over TLS on `tlsPort` when `sip_certificate` is in `extraConfig`).
final class Baresip: @unchecked Sendable {
    let directory: URL
    let sipPort: Int
    /// Where baresip listens for SIP over TLS: libre takes the port after `sip_listen`'s.
    var tlsPort: Int { sipPort + 1 }
    private let process = Process()
    private let output = OutputWatcher()
    /// Whether baresip has exited, and who waits for it.
    private let exit = NIOLockedValueBox<(exited: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// - Parameters:
    ///   - dial: the SIP URI to call at start; nil waits for a call and answers it.
    ///   - mediaEncryption: baresip's `mediaenc` (`srtp-mand`: RTP/SAVP with SDES), or nil for plain RTP.
    ///   - microphone: mono samples baresip sends, at `microphoneRate`: aufile takes only the codec's own rate
    ///     (8000 for G.711, 48000 for Opus) and hangs up otherwise.
    ///   - user: the account's user, the one a call to baresip must name.
    ///   - extraConfig: more lines for baresip's `config` (e.g. `sip_cafile` for TLS).
    init(dial: String?, mediaEncryption: String?, microphone: [Int16], microphoneRate: Int, user: String = "softphone", extraConfig: String = "") throws {
        sipPort = try FreePort.sipPortPair()
        let rtp = try FreePort.udpRange(count: 10)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-baresip-\(UUID().uuidString)")
        let dumps = directory.appendingPathComponent("dumps")
        try FileManager.default.createDirectory(at: dumps, withIntermediateDirectories: true)
        let microphonePath = directory.appendingPathComponent("microphone.wav").path
        try Data(WAVFile.encode(microphone, sampleRate: microphoneRate)).write(to: URL(fileURLWithPath: microphonePath))
        let config = """
            poll_method epoll
            sip_listen 127.0.0.1:\(sipPort)
            audio_player aubridge,speaker
            audio_alert aubridge,alert
            audio_source aufile,\(microphonePath)
            rtp_ports \(rtp.lowerBound)-\(rtp.upperBound)
            module_path /usr/lib/baresip/modules
            module g711.so
            module opus.so
            module aufile.so
            module aubridge.so
            module sndfile.so
            module srtp.so
            module_app account.so
            module_app menu.so
            snd_path \(dumps.path)
            opus_stereo no
            \(extraConfig)

            """
        try config.write(to: directory.appendingPathComponent("config"), atomically: true, encoding: .utf8)
        let encryption = mediaEncryption.map { ";mediaenc=\($0)" } ?? ""
        try "<sip:\(user)@127.0.0.1>;regint=0;answermode=auto\(encryption)\n"
            .write(to: directory.appendingPathComponent("accounts"), atomically: true, encoding: .utf8)
        // Its contacts and uuid files are created on first start; an empty folder is a fresh softphone.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/baresip")
        process.arguments = ["-f", directory.path] + (dial.map { ["-e", "/dial \($0)"] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        output.attach(pipe)
        process.terminationHandler = { [exit] _ in
            let waiters = exit.withLockedValue { state in
                state.exited = true
                defer { state.waiters = [] }
                return state.waiters
            }
            waiters.forEach { $0.resume() }
        }
        try process.run()
    }

    var log: String { output.text }

    func waitForLog(_ text: String, timeout: Double = 20) async throws {
        try await output.waitForLine(containing: text, timeout: timeout)
    }

    /// What baresip decoded from the far end: interleaved samples, rate, channels (from `sndfile`'s dump).
    func receivedAudio() throws -> (samples: [Int16], sampleRate: Int, channels: Int) {
        let dumps = directory.appendingPathComponent("dumps")
        let names = try FileManager.default.contentsOfDirectory(atPath: dumps.path)
        guard let name = names.first(where: { $0.hasSuffix("-dec.wav") }) else {
            throw HarnessError("baresip wrote no decode dump (files: \(names))\n\(log)")
        }
        let data = try Data(contentsOf: dumps.appendingPathComponent(name))
        return try data.withUnsafeBytes { try WAVFile.parsePCM16($0, name: name) }
    }

    /// SIGTERM (baresip ends its calls and exits); SIGKILL if it is still there after `grace` seconds.
    func stop(grace: Duration = .seconds(5)) async {
        let pid = process.processIdentifier
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.exited() }
            group.addTask {
                try? await Task.sleep(for: grace)
                if self.exit.withLockedValue({ !$0.exited }) { kill(pid, SIGKILL) }
            }
            await group.waitForAll()
        }
    }

    private func exited() async {
        await withCheckedContinuation { continuation in
            let done = exit.withLockedValue { state in
                if !state.exited { state.waiters.append(continuation) }
                return state.exited
            }
            if done { continuation.resume() }
        }
    }

    deinit {
        // A test that failed before `stop` must not leave the softphone running.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }
}
