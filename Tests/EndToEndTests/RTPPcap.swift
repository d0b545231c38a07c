import Foundation
import Media
import TrunklineTestSupport

/// Caller RTP written as a pcap that sipp's `play_pcap_audio` replays (classic libpcap, Ethernet/IPv4/UDP; sipp
/// rewrites the addresses and keeps the RTP and the timing). Made at test time, so the canary number lives only
/// in the test's source.
struct RTPPcap {
    private var packets: [[UInt8]] = []
    private var sequence: UInt16 = 1000
    private var timestamp: UInt32 = 16_000
    private let ssrc: UInt32 = 0x5EC0_CA97

    /// 20 ms of μ-law audio (160 bytes), payload type 0.
    mutating func audio(_ muLaw: ArraySlice<UInt8>) {
        precondition(muLaw.count == 160)
        append(payloadType: 0, marker: packets.isEmpty, timestamp: timestamp, payload: Array(muLaw))
        timestamp &+= 160
    }

    /// μ-law audio of any length, cut into 20 ms packets (the tail padded with silence).
    mutating func audio(_ muLaw: [UInt8]) {
        var padded = muLaw
        padded += [UInt8](repeating: 0xFF, count: (160 - muLaw.count % 160) % 160)
        for start in stride(from: 0, to: padded.count, by: 160) { audio(padded[start..<(start + 160)]) }
    }

    /// `keys` as RFC 4733 events on payload type 101, made by the gateway's own sender state machine (100 ms
    /// tones, three end packets, 100 ms gaps of silence). With `leakMs`, each press is preceded by that much of
    /// its tone in-band, as phones leak before they switch to telephone-events.
    mutating func events(_ keys: String, leakMs: Int = 0) throws {
        var sender = RFC4733Sender()
        for key in keys {
            if leakMs > 0 { audio(DTMFSignal.muLaw(String(key), toneMs: leakMs, gapMs: 0)) }
            try sender.enqueue(String(key))
            repeat {
                switch sender.next(timestamp: timestamp) {
                case .event(let event, let start, let marker):
                    var payload = [UInt8](repeating: 0, count: 4)
                    payload.withUnsafeMutableBytes { _ = event.write(to: $0) }
                    append(payloadType: 101, marker: marker, timestamp: start, payload: payload)
                    timestamp &+= 160
                case .audio:
                    audio([UInt8](repeating: 0xFF, count: 160)[...])
                }
            } while sender.isBusy
        }
    }

    /// Milliseconds of RTP written so far (one packet per 20 ms).
    var durationMs: Int { packets.count * 20 }

    private mutating func append(payloadType: UInt8, marker: Bool, timestamp: UInt32, payload: [UInt8]) {
        var rtp: [UInt8] = [0x80, (marker ? 0x80 : 0) | payloadType]
        rtp += bigEndian(sequence) + bigEndian(timestamp) + bigEndian(ssrc) + payload
        sequence &+= 1
        packets.append(rtp)
    }

    /// The pcap file: one packet every 20 ms.
    func write(to path: String) throws {
        var file: [UInt8] = []
        file += littleEndian(UInt32(0xA1B2_C3D4)) + littleEndian(UInt16(2)) + littleEndian(UInt16(4))
        file += littleEndian(UInt32(0)) + littleEndian(UInt32(0)) + littleEndian(UInt32(65535)) + littleEndian(UInt32(1))
        for (index, rtp) in packets.enumerated() {
            let udpLength = 8 + rtp.count
            var ip: [UInt8] = [0x45, 0] + bigEndian(UInt16(20 + udpLength)) + bigEndian(UInt16(index & 0xFFFF)) + [0, 0, 64, 17, 0, 0]
            ip += [127, 0, 0, 1, 127, 0, 0, 1]
            let checksum = Self.checksum(ip)
            ip[10] = UInt8(checksum >> 8)
            ip[11] = UInt8(checksum & 0xFF)
            let udp = bigEndian(UInt16(40000)) + bigEndian(UInt16(40002)) + bigEndian(UInt16(udpLength)) + [0, 0]
            let ethernet: [UInt8] = [0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00]
            let frame = ethernet + ip + udp + rtp
            let micros = index * 20_000
            file += littleEndian(UInt32(1_700_000_000 + micros / 1_000_000)) + littleEndian(UInt32(micros % 1_000_000))
            file += littleEndian(UInt32(frame.count)) + littleEndian(UInt32(frame.count)) + frame
        }
        try Data(file).write(to: URL(fileURLWithPath: path))
    }

    private static func checksum(_ header: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        for i in stride(from: 0, to: header.count, by: 2) { sum += UInt32(header[i]) << 8 | UInt32(header[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }
}

private func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }
private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
