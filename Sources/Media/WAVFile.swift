import Foundation

/// A prompt loaded from a RIFF/WAVE file: 16-bit little-endian PCM, mono, 8000 Hz — the only format accepted,
/// since that is what goes out on a G.711 call without resampling.
public struct WAVFile: Sendable {
    public var samples: [Int16]
    public var sampleRate: Int { Self.sampleRate }
    /// The one rate prompts have.
    public static let sampleRate = 8000

    public init(samples: [Int16]) {
        self.samples = samples
    }

    /// Reads and checks a WAV file.
    /// - Throws: `MediaError` with code `.invalidWAV` naming the file and what is wrong with it.
    public static func load(path: String) throws -> WAVFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw MediaError(.invalidWAV, "\(path): cannot read: \(error.localizedDescription)")
        }
        return try data.withUnsafeBytes { try parse($0, name: path) }
    }

    /// Parses WAV bytes.
    /// - Parameter name: names the source in error messages.
    public static func parse(_ bytes: UnsafeRawBufferPointer, name: String) throws -> WAVFile {
        let pcm = try parsePCM16(bytes, name: name)
        guard pcm.channels == 1 else {
            throw MediaError(.invalidWAV, "\(name): \(pcm.channels) channels; need mono, 16-bit PCM, 8000 Hz")
        }
        guard pcm.sampleRate == 8000 else {
            throw MediaError(.invalidWAV, "\(name): sample rate \(pcm.sampleRate) Hz; need 8000 Hz, mono, 16-bit PCM")
        }
        return WAVFile(samples: pcm.samples)
    }

    /// Parses 16-bit PCM WAV bytes at any rate and channel count (recordings, a softphone's dumps).
    /// - Returns: the interleaved samples, the rate and the channel count.
    public static func parsePCM16(_ bytes: UnsafeRawBufferPointer, name: String) throws -> (samples: [Int16], sampleRate: Int, channels: Int) {
        func fail(_ what: String) -> MediaError { MediaError(.invalidWAV, "\(name): \(what)") }
        func tag(_ at: Int) -> String { String(decoding: bytes[at..<(at + 4)], as: UTF8.self) }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }

        guard bytes.count >= 12, tag(0) == "RIFF", tag(8) == "WAVE" else {
            throw fail("not a RIFF/WAVE file")
        }
        var offset = 12
        var format: (audioFormat: Int, channels: Int, rate: Int, bits: Int)?
        while offset + 8 <= bytes.count {
            let id = tag(offset)
            let size = u32(offset + 4)
            let body = offset + 8
            switch id {
            case "fmt ":
                guard size >= 16, body + 16 <= bytes.count else { throw fail("truncated fmt chunk") }
                var audioFormat = u16(body)
                if audioFormat == 0xFFFE, size >= 40, body + 26 <= bytes.count {
                    audioFormat = u16(body + 24)  // WAVE_FORMAT_EXTENSIBLE: first two bytes of the sub-format GUID
                }
                format = (audioFormat, u16(body + 2), u32(body + 4), u16(body + 14))
            case "data":
                guard let format else { throw fail("data chunk before fmt chunk") }
                guard format.audioFormat == 1 else {
                    throw fail("audio format \(format.audioFormat) is not PCM (1); need 16-bit PCM, mono, 8000 Hz")
                }
                guard format.channels >= 1, format.rate > 0 else { throw fail("no channels or no sample rate") }
                guard format.bits == 16 else {
                    throw fail("\(format.bits) bits per sample; need 16-bit PCM, mono, 8000 Hz")
                }
                // Streaming writers leave the size at 0 or 0xFFFFFFFF: take what is there.
                let available = bytes.count - body
                let length = (size == 0 || size > available) ? available : size
                let count = length / 2
                let samples = [Int16](unsafeUninitializedCapacity: count) { out, initialized in
                    for i in 0..<count {
                        out[i] = Int16(bitPattern: UInt16(bytes[body + 2 * i]) | UInt16(bytes[body + 2 * i + 1]) << 8)
                    }
                    initialized = count
                }
                return (samples, format.rate, format.channels)
            default:
                break
            }
            offset = body + size + (size & 1)  // chunks are padded to even sizes
        }
        throw fail(format == nil ? "no fmt chunk" : "no data chunk")
    }

    /// Encodes samples as a 16-bit mono WAV file (for tests and recordings), 8000 Hz unless told otherwise.
    public static func encode(_ samples: [Int16], sampleRate: Int = 8000) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(44 + samples.count * 2)
        func put32(_ v: Int) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        func put16(_ v: Int) { for i in 0..<2 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        out += Array("RIFF".utf8); put32(36 + samples.count * 2); out += Array("WAVE".utf8)
        out += Array("fmt ".utf8); put32(16); put16(1); put16(1); put32(sampleRate); put32(2 * sampleRate); put16(2); put16(16)
        out += Array("data".utf8); put32(samples.count * 2)
        for s in samples { put16(Int(UInt16(bitPattern: s))) }
        return out
    }
}
