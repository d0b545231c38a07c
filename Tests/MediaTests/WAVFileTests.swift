import Foundation
import Testing
@testable import Media

@Suite struct WAVFileTests {
    private func header(format: Int = 1, channels: Int = 1, rate: Int = 8000, bits: Int = 16, dataBytes: Int) -> [UInt8] {
        var out: [UInt8] = []
        func put32(_ v: Int) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        func put16(_ v: Int) { for i in 0..<2 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        out += Array("RIFF".utf8); put32(36 + dataBytes); out += Array("WAVE".utf8)
        out += Array("fmt ".utf8); put32(16); put16(format); put16(channels); put32(rate)
        put32(rate * channels * bits / 8); put16(channels * bits / 8); put16(bits)
        out += Array("data".utf8); put32(dataBytes)
        return out
    }

    private func parse(_ bytes: [UInt8]) throws -> WAVFile {
        try bytes.withUnsafeBytes { try WAVFile.parse($0, name: "test.wav") }
    }

    @Test func loadsSamplesFromFile() throws {
        let samples: [Int16] = [0, 1, -1, 32767, -32768, 1234]
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("media-test-\(UInt32.random(in: 0...UInt32.max)).wav").path
        try Data(WAVFile.encode(samples)).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try WAVFile.load(path: path).samples == samples)
    }

    @Test func skipsOtherChunks() throws {
        var bytes = header(dataBytes: 4)
        // Insert an odd-sized LIST chunk (padded to even) between fmt and data.
        let list: [UInt8] = Array("LIST".utf8) + [3, 0, 0, 0, 0x61, 0x62, 0x63, 0]
        bytes.insert(contentsOf: list, at: 36)
        bytes += [0x01, 0x00, 0xFF, 0xFF]
        #expect(try parse(bytes).samples == [1, -1])
    }

    @Test(arguments: [
        ("44100 Hz", 1, 1, 44100, 16, "44100"),
        ("stereo", 1, 2, 8000, 16, "2 channels"),
        ("8-bit", 1, 1, 8000, 8, "8 bits"),
        ("μ-law format", 7, 1, 8000, 8, "not PCM"),
    ])
    func rejectsOtherFormats(name: String, format: Int, channels: Int, rate: Int, bits: Int, reason: String) {
        let bytes = header(format: format, channels: channels, rate: rate, bits: bits, dataBytes: 4) + [0, 0, 0, 0]
        do {
            _ = try parse(bytes)
            Issue.record("\(name) accepted")
        } catch let error as MediaError {
            #expect(error.code == .invalidWAV)
            #expect(error.message.contains("test.wav") && error.message.contains(reason), "\(error.message)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func rejectsNonWAVAndMissingFile() {
        #expect(throws: MediaError(.invalidWAV, "")) { try parse(Array("hello world, not a wav".utf8)) }
        #expect(throws: MediaError(.invalidWAV, "")) { try WAVFile.load(path: "/nonexistent/prompt.wav") }
        #expect(throws: MediaError(.invalidWAV, "")) { try parse(Array(header(dataBytes: 0).prefix(36))) }
    }
}
