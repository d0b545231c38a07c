import NIOCore

/// The fixed RTP header (RFC 3550 §5.1), parsed from and written to raw bytes without allocating.
///
/// Parsing validates the whole packet layout (CSRC list, header extension, padding) and returns where the
/// payload lies; the CSRC list and the extension's contents are skipped, not kept.
public struct RTPHeader: Sendable, Hashable {
    /// Always 2 for packets this type writes; `parse` rejects anything else.
    public var version: UInt8
    /// The P bit: the payload ends with padding whose last byte gives its length.
    public var padding: Bool
    /// The X bit: a header extension follows the CSRC list.
    public var `extension`: Bool
    /// Number of CSRC identifiers after the fixed header (0...15).
    public var csrcCount: UInt8
    public var marker: Bool
    /// 7-bit payload type.
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32

    /// Size of the fixed header, which is all `write` produces.
    public static let fixedSize = 12

    public init(
        version: UInt8 = 2, padding: Bool = false, extension: Bool = false, csrcCount: UInt8 = 0,
        marker: Bool = false, payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32
    ) {
        self.version = version
        self.padding = padding
        self.extension = `extension`
        self.csrcCount = csrcCount
        self.marker = marker
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
    }

    /// Parses an RTP packet.
    ///
    /// - Parameter bytes: one whole datagram.
    /// - Returns: the header and the byte range of the payload within `bytes` (after CSRCs and extension,
    ///   before padding), or `nil` if the packet is not version 2 or is truncated or inconsistent (CSRC list or
    ///   extension beyond the end, padding length 0 or longer than what follows the header).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> (header: RTPHeader, payload: Range<Int>)? {
        let count = bytes.count
        guard count >= fixedSize else { return nil }
        let b0 = bytes[0]
        let b1 = bytes[1]
        guard b0 >> 6 == 2 else { return nil }
        let padding = b0 & 0x20 != 0
        let hasExtension = b0 & 0x10 != 0
        let csrcCount = b0 & 0x0F
        var offset = fixedSize + 4 * Int(csrcCount)
        guard offset <= count else { return nil }
        if hasExtension {
            guard offset + 4 <= count else { return nil }
            let words = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            offset += 4 + 4 * words
            guard offset <= count else { return nil }
        }
        var end = count
        if padding {
            let padLength = Int(bytes[count - 1])
            guard padLength > 0, offset + padLength <= count else { return nil }
            end = count - padLength
        }
        let header = RTPHeader(
            version: 2, padding: padding, extension: hasExtension, csrcCount: csrcCount,
            marker: b1 & 0x80 != 0, payloadType: b1 & 0x7F,
            sequenceNumber: UInt16(bytes[2]) << 8 | UInt16(bytes[3]),
            timestamp: UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7]),
            ssrc: UInt32(bytes[8]) << 24 | UInt32(bytes[9]) << 16 | UInt32(bytes[10]) << 8 | UInt32(bytes[11]))
        return (header, offset..<end)
    }

    /// The first two header bytes as written: version 2, no extension, no CSRCs (those are never written).
    var firstWord: UInt16 {
        var b0: UInt16 = 0x80
        if padding { b0 |= 0x20 }
        var b1 = UInt16(payloadType & 0x7F)
        if marker { b1 |= 0x80 }
        return b0 << 8 | b1
    }

    /// Writes the 12-byte fixed header (version 2; no CSRC list and no extension, whatever the fields say).
    ///
    /// - Parameter buffer: at least 12 bytes.
    /// - Returns: the number of bytes written (12), or 0 if `buffer` is too small.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard buffer.count >= Self.fixedSize else { return 0 }
        let first = firstWord
        buffer[0] = UInt8(first >> 8)
        buffer[1] = UInt8(first & 0xFF)
        buffer[2] = UInt8(sequenceNumber >> 8)
        buffer[3] = UInt8(sequenceNumber & 0xFF)
        for i in 0..<4 {
            buffer[4 + i] = UInt8(truncatingIfNeeded: timestamp >> (24 - 8 * i))
            buffer[8 + i] = UInt8(truncatingIfNeeded: ssrc >> (24 - 8 * i))
        }
        return Self.fixedSize
    }

    /// Appends the 12-byte fixed header to `buffer` (same rules as `write(to:)`).
    @discardableResult
    public func write(to buffer: inout ByteBuffer) -> Int {
        buffer.writeInteger(firstWord)
        buffer.writeInteger(sequenceNumber)
        buffer.writeInteger(timestamp)
        buffer.writeInteger(ssrc)
        return Self.fixedSize
    }
}
