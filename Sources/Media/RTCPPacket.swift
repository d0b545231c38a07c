import NIOCore

/// One RTCP reception report block (RFC 3550 §6.4.1): what a receiver says about one source's stream.
public struct RTCPReportBlock: Sendable, Hashable {
    /// The source reported on.
    public var ssrc: UInt32
    /// Packets lost since the previous report, as a fraction of those expected, in 1/256.
    public var fractionLost: UInt8
    /// Packets lost since the start (24-bit signed on the wire; duplicates can make it negative).
    public var cumulativeLost: Int32
    /// Cycles (high 16 bits) and highest sequence number received.
    public var extendedHighestSequence: UInt32
    /// Interarrival jitter in RTP timestamp units.
    public var jitter: UInt32
    /// The middle 32 bits of the NTP timestamp of the last SR received from the source (0: none yet).
    public var lastSenderReport: UInt32
    /// Time since that SR was received, in 1/65536 s.
    public var delaySinceLastSenderReport: UInt32

    public init(
        ssrc: UInt32, fractionLost: UInt8, cumulativeLost: Int32, extendedHighestSequence: UInt32, jitter: UInt32,
        lastSenderReport: UInt32, delaySinceLastSenderReport: UInt32
    ) {
        self.ssrc = ssrc
        self.fractionLost = fractionLost
        self.cumulativeLost = cumulativeLost
        self.extendedHighestSequence = extendedHighestSequence
        self.jitter = jitter
        self.lastSenderReport = lastSenderReport
        self.delaySinceLastSenderReport = delaySinceLastSenderReport
    }
}

/// The sender information of an SR (RFC 3550 §6.4.1).
public struct RTCPSenderInfo: Sendable, Hashable {
    /// 64-bit NTP timestamp (seconds since 1900 in the high half) of when the report was sent.
    public var ntpTimestamp: UInt64
    /// The same instant on the RTP clock of the sender's stream.
    public var rtpTimestamp: UInt32
    public var packetCount: UInt32
    /// Payload octets sent.
    public var octetCount: UInt32

    public init(ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32) {
        self.ntpTimestamp = ntpTimestamp
        self.rtpTimestamp = rtpTimestamp
        self.packetCount = packetCount
        self.octetCount = octetCount
    }

    /// The middle 32 bits of the NTP timestamp: what a receiver echoes as LSR.
    public var compactNTP: UInt32 { UInt32(truncatingIfNeeded: ntpTimestamp >> 16) }
}

/// What the gateway uses of one compound RTCP packet from the peer. Made without allocating.
public struct RTCPReport: Sendable, Hashable {
    /// The SSRC of the first SR or RR: the peer's.
    public var senderSSRC: UInt32
    /// Present when the peer sent an SR (it sends media).
    public var senderInfo: RTCPSenderInfo?
    /// The peer's report block about our stream, if it has one.
    public var blockAboutUs: RTCPReportBlock?
    /// The compound carried a BYE: the peer is leaving the session.
    public var bye: Bool

    public init(senderSSRC: UInt32, senderInfo: RTCPSenderInfo? = nil, blockAboutUs: RTCPReportBlock? = nil, bye: Bool = false) {
        self.senderSSRC = senderSSRC
        self.senderInfo = senderInfo
        self.blockAboutUs = blockAboutUs
        self.bye = bye
    }
}

/// RTCP packets (RFC 3550 §6) as the session writes and reads them: compound SR/RR + SDES CNAME (+ BYE).
public enum RTCPPacket {
    static let senderReport: UInt8 = 200
    static let receiverReport: UInt8 = 201
    static let sourceDescription: UInt8 = 202
    static let goodbye: UInt8 = 203
    /// Largest compound written: SR (28) + one block (24) + SDES with a 255-byte CNAME (264) + BYE (8).
    static let maxLength = 28 + 24 + 264 + 8

    /// Whether a datagram on a multiplexed port is RTCP rather than RTP (RFC 5761 §4: the second byte is an RTCP
    /// packet type, 192–223, which RTP payload types 64–95 with the marker bit would collide with; none is used).
    @inline(__always)
    public static func isRTCP(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 8 && (192...223).contains(bytes[1])
    }

    /// Appends a compound packet to `buffer`: an SR when `senderInfo` is given, else an RR; one report block when
    /// `block` is given; SDES with `cname` (RFC 3550 §6.1: every compound carries it); then BYE if asked.
    /// Writes into the buffer's existing capacity when it has `maxLength` free (the session's buffer does).
    public static func write(
        ssrc: UInt32, senderInfo: RTCPSenderInfo?, block: RTCPReportBlock?, cname: [UInt8], bye: Bool,
        into buffer: inout ByteBuffer
    ) {
        let blocks: UInt8 = block == nil ? 0 : 1
        let reportWords = (senderInfo == nil ? 1 : 6) + Int(blocks) * 6
        buffer.writeInteger(0x80 | blocks)
        buffer.writeInteger(senderInfo == nil ? receiverReport : senderReport)
        buffer.writeInteger(UInt16(reportWords))
        buffer.writeInteger(ssrc)
        if let info = senderInfo {
            buffer.writeInteger(info.ntpTimestamp)
            buffer.writeInteger(info.rtpTimestamp)
            buffer.writeInteger(info.packetCount)
            buffer.writeInteger(info.octetCount)
        }
        if let block {
            buffer.writeInteger(block.ssrc)
            let lost = UInt32(bitPattern: max(-0x80_0000, min(0x7F_FFFF, block.cumulativeLost))) & 0xFF_FFFF
            buffer.writeInteger(UInt32(block.fractionLost) << 24 | lost)
            buffer.writeInteger(block.extendedHighestSequence)
            buffer.writeInteger(block.jitter)
            buffer.writeInteger(block.lastSenderReport)
            buffer.writeInteger(block.delaySinceLastSenderReport)
        }
        // SDES: one chunk, CNAME item, a terminating zero, padded to a 32-bit boundary.
        let name = cname.prefix(255)
        let chunkBytes = 4 + 2 + name.count + 1
        let padded = (chunkBytes + 3) & ~3
        buffer.writeInteger(UInt8(0x81))
        buffer.writeInteger(sourceDescription)
        buffer.writeInteger(UInt16(padded / 4))
        buffer.writeInteger(ssrc)
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(UInt8(name.count))
        buffer.writeBytes(name)
        buffer.writeRepeatingByte(0, count: padded - chunkBytes + 1)
        if bye {
            buffer.writeInteger(UInt8(0x81))
            buffer.writeInteger(goodbye)
            buffer.writeInteger(UInt16(1))
            buffer.writeInteger(ssrc)
        }
    }

    /// Reads a compound packet (RFC 3550 A.2 checks: version 2, the first packet an SR or RR, the lengths adding
    /// up to the datagram). Picks out the sender's info and the report block about `ourSSRC`; other packets
    /// (SDES, APP, XR, feedback) are skipped.
    /// - Returns: nil when the datagram is not valid RTCP.
    public static func parse(_ bytes: UnsafeRawBufferPointer, ourSSRC: UInt32) -> RTCPReport? {
        guard bytes.count >= 8, bytes[0] >> 6 == 2, bytes[1] == senderReport || bytes[1] == receiverReport else { return nil }
        var report = RTCPReport(senderSSRC: word(bytes, 4))
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 4, bytes[offset] >> 6 == 2 else { return nil }
            let count = Int(bytes[offset] & 0x1F)
            let type = bytes[offset + 1]
            let length = 4 * ((Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])) + 1)
            guard length <= bytes.count - offset else { return nil }
            switch type {
            case senderReport, receiverReport:
                let infoLength = type == senderReport ? 20 : 0
                guard length >= 8 + infoLength + 24 * count else { return nil }
                if type == senderReport, offset == 0 {
                    let high = UInt64(word(bytes, offset + 8)), low = UInt64(word(bytes, offset + 12))
                    report.senderInfo = RTCPSenderInfo(
                        ntpTimestamp: high << 32 | low, rtpTimestamp: word(bytes, offset + 16),
                        packetCount: word(bytes, offset + 20), octetCount: word(bytes, offset + 24))
                }
                var blockOffset = offset + 8 + infoLength
                for _ in 0..<count {
                    if word(bytes, blockOffset) == ourSSRC, report.blockAboutUs == nil {
                        let lossWord = word(bytes, blockOffset + 4)
                        // 24-bit two's complement.
                        let lost = Int32(bitPattern: (lossWord & 0xFF_FFFF) << 8) >> 8
                        report.blockAboutUs = RTCPReportBlock(
                            ssrc: ourSSRC, fractionLost: UInt8(lossWord >> 24), cumulativeLost: lost,
                            extendedHighestSequence: word(bytes, blockOffset + 8), jitter: word(bytes, blockOffset + 12),
                            lastSenderReport: word(bytes, blockOffset + 16),
                            delaySinceLastSenderReport: word(bytes, blockOffset + 20))
                    }
                    blockOffset += 24
                }
            case goodbye:
                report.bye = true
            default:
                break
            }
            offset += length
        }
        return report
    }

    @inline(__always)
    private static func word(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}
