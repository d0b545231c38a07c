import NIOCore
import Testing
@testable import Media

/// Builds a datagram from raw header bytes plus payload.
private func parse(_ bytes: [UInt8]) -> (header: RTPHeader, payload: Range<Int>)? {
    bytes.withUnsafeBytes { RTPHeader.parse($0) }
}

@Suite struct RTPHeaderTests {
    @Test func writeThenParseRoundTrips() throws {
        let header = RTPHeader(
            marker: true, payloadType: 101, sequenceNumber: 0xBEEF, timestamp: 0xDEAD_BEEF, ssrc: 0x0102_0304)
        var bytes = [UInt8](repeating: 0, count: 12 + 3)
        bytes[12] = 1; bytes[13] = 2; bytes[14] = 3
        let written = bytes.withUnsafeMutableBytes { header.write(to: $0) }
        #expect(written == 12)
        #expect(Array(bytes[0..<12]) == [0x80, 0xE5, 0xBE, 0xEF, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4])
        let parsed = try #require(parse(bytes))
        #expect(parsed.header == header)
        #expect(parsed.payload == 12..<15)
    }

    @Test func byteBufferWriterMatchesRawWriter() {
        let header = RTPHeader(payloadType: 8, sequenceNumber: 7, timestamp: 160, ssrc: 42)
        var raw = [UInt8](repeating: 0, count: 12)
        raw.withUnsafeMutableBytes { _ = header.write(to: $0) }
        var buffer = ByteBufferAllocator().buffer(capacity: 12)
        #expect(header.write(to: &buffer) == 12)
        #expect(buffer.readBytes(length: buffer.readableBytes) == raw)
    }

    @Test func writeRefusesShortBuffer() {
        var bytes = [UInt8](repeating: 0, count: 11)
        let header = RTPHeader(payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0)
        #expect(bytes.withUnsafeMutableBytes { header.write(to: $0) } == 0)
    }

    @Test func skipsCSRCsAndExtensionAndStripsPadding() throws {
        // V=2 P=1 X=1 CC=2, PT 0; 2 CSRCs; extension of 1 word; payload 4 bytes; padding 3 bytes.
        var bytes: [UInt8] = [0xB2, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9]
        bytes += [1, 1, 1, 1, 2, 2, 2, 2]  // CSRCs
        bytes += [0xBE, 0xDE, 0x00, 0x01, 9, 9, 9, 9]  // extension header + 1 word
        bytes += [0xA, 0xB, 0xC, 0xD]  // payload
        bytes += [0, 0, 3]  // padding
        let parsed = try #require(parse(bytes))
        #expect(parsed.header.csrcCount == 2)
        #expect(parsed.header.extension)
        #expect(parsed.header.padding)
        #expect(parsed.header.sequenceNumber == 1)
        #expect(parsed.header.timestamp == 160)
        #expect(parsed.header.ssrc == 9)
        #expect(Array(bytes[parsed.payload]) == [0xA, 0xB, 0xC, 0xD])
    }

    @Test func emptyPayloadIsValid() throws {
        let parsed = try #require(parse([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
        #expect(parsed.payload.isEmpty)
    }

    @Test(arguments: [
        ("short", [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] as [UInt8]),
        ("empty", []),
        ("version 1", [0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF]),
        ("version 0", [0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF]),
        ("CSRC count beyond length", [0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]),
        ("extension header truncated", [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE]),
        ("extension beyond length", [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 2, 1, 2, 3, 4]),
        ("padding larger than payload", [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 9]),
        ("padding length zero", [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0]),
        ("padding bit without any byte after header", [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ])
    func rejectsMalformed(name: String, bytes: [UInt8]) {
        #expect(parse(bytes) == nil, "\(name)")
    }

    @Test func paddingExactlyFillingPayloadIsValid() throws {
        let parsed = try #require(parse([0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]))
        #expect(parsed.payload == 12..<12)
    }
}

