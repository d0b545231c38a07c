import Foundation
import Media
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Text to speech for `say`: the `espeak-ng` program (Debian's), run off the event loop, its 22.05 kHz output
/// resampled (libspeexdsp) to the agent's rate. Every rendering is cached by text and rate, so a flow's fixed
/// texts are rendered once when the gateway starts and a call never waits for them.
///
/// Thread-safe: the cache is behind a lock; renderings run on NIO's thread pool.
public final class SpeechSynthesizer: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String

        static let notInstalled = Failure(description: "`say` needs espeak-ng, which is not on the PATH (apt-get install espeak-ng)")
    }

    private struct Key: Hashable {
        var text: String
        var sampleRate: Int
    }

    private struct Cache {
        var entries: [Key: [Int16]] = [:]
        /// Insertion order, for evicting the oldest once full.
        var order: [Key] = []
    }

    /// Renderings kept: every fixed text of every flow, and the latest texts with variables in them.
    public static let cacheCapacity = 512
    /// espeak-ng's voice and speed (words per minute): a clear American voice, a little slower than its default 175.
    public static let voice = "en-us"
    public static let wordsPerMinute = 160

    private let executable: String
    private let cache = NIOLockedValueBox(Cache())

    /// - Throws: when `espeak-ng` is not on the PATH.
    public init(searchPath: String = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") throws {
        let candidates = searchPath.split(separator: ":").map { "\($0)/espeak-ng" }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Failure.notInstalled
        }
        self.executable = found
    }

    /// The rendering of `text` at `sampleRate`, if it was made before.
    public func cached(_ text: String, sampleRate: Int) -> [Int16]? {
        cache.withLockedValue { $0.entries[Key(text: text, sampleRate: sampleRate)] }
    }

    /// Renders `text` on NIO's thread pool (or takes it from the cache); the future completes on `eventLoop`.
    public func render(_ text: String, sampleRate: Int, on eventLoop: EventLoop) -> EventLoopFuture<[Int16]> {
        if let samples = cached(text, sampleRate: sampleRate) { return eventLoop.makeSucceededFuture(samples) }
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { try self.renderBlocking(text, sampleRate: sampleRate) }
    }

    /// Renders `text` on this thread: at startup, and on the thread pool. Never on an event loop.
    @discardableResult
    public func renderBlocking(_ text: String, sampleRate: Int) throws -> [Int16] {
        let key = Key(text: text, sampleRate: sampleRate)
        if let samples = cache.withLockedValue({ $0.entries[key] }) { return samples }
        let wav = try runEspeak(text)
        let parsed = try wav.withUnsafeBytes { try WAVFile.parsePCM16($0, name: "espeak-ng output") }
        guard parsed.channels == 1 else { throw Failure(description: "espeak-ng wrote \(parsed.channels) channels") }
        let samples = try parsed.samples.withUnsafeBufferPointer {
            try Resampler.convert($0, from: parsed.sampleRate, to: sampleRate)
        }
        cache.withLockedValue { cache in
            guard cache.entries.updateValue(samples, forKey: key) == nil else { return }
            cache.order.append(key)
            if cache.order.count > Self.cacheCapacity { cache.entries[cache.order.removeFirst()] = nil }
        }
        return samples
    }

    private func runEspeak(_ text: String) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        // The text goes in on stdin, never as an argument: a text starting with "-" is not an option.
        process.arguments = ["--stdin", "--stdout", "-v", Self.voice, "-s", "\(Self.wordsPerMinute)"]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw Failure(description: "cannot start \(executable): \(error)")
        }
        input.fileHandleForWriting.write(Data(text.utf8))
        try? input.fileHandleForWriting.close()
        let wav = output.fileHandleForReading.readDataToEndOfFile()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "espeak-ng exited with \(process.terminationStatus): \(String(decoding: message, as: UTF8.self))")
        }
        return wav
    }
}
