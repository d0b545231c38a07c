#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Media

/// Caller RTP for the benchmark: the A-law speech sipp ships (`g711a.pcap`, about 6 s) looped to the call's
/// length, as μ-law (payload type 0) or as Opus made by the gateway's own encoder (payload type 96, 48 kHz RTP
/// clock), written as a classic pcap that sipp's `play_pcap_audio` replays (it rewrites the addresses).
enum BenchPcap {
    enum Codec: String {
        case pcmu, opus
    }

    static let speech = "/usr/share/sip-tester/g711a.pcap"
    static let opusPayloadType: UInt8 = 96

    static func write(codec: Codec, seconds: Int, to path: String) throws {
        let speech = try speechSamples()
        let packets = seconds * 50
        var payloads: [[UInt8]] = []
        payloads.reserveCapacity(packets)
        var frame = [Int16](repeating: 0, count: 160)
        let opus = codec == .opus ? try OpusFrameEncoder(sampleRate: 8000, peer: OpusParameters(), frameSamples: 160) : nil
        var encoded = [UInt8](repeating: 0, count: OpusFrameEncoder.maxPacketBytes)
        for index in 0..<packets {
            for i in 0..<160 { frame[i] = speech[(index * 160 + i) % speech.count] }
            switch codec {
            case .pcmu:
                var muLaw = [UInt8](repeating: 0, count: 160)
                frame.withUnsafeBufferPointer { pcm in
                    muLaw.withUnsafeMutableBufferPointer { G711Law.muLaw.encode(pcm, into: $0) }
                }
                payloads.append(muLaw)
            case .opus:
                let n = frame.withUnsafeBufferPointer { pcm in
                    encoded.withUnsafeMutableBytes { opus!.encode(pcm, into: $0) }
                }
                guard let n else { throw BenchError("libopus could not encode frame \(index)") }
                payloads.append(Array(encoded[0..<n]))
            }
        }
        let payloadType: UInt8 = codec == .opus ? opusPayloadType : 0
        let ticks: UInt32 = codec == .opus ? 960 : 160
        try pcapFile(payloadType: payloadType, timestampStep: ticks, payloads: payloads)
            .write(to: URL(fileURLWithPath: path))
    }

    /// The A-law payloads of sipp's speech pcap, decoded (Ethernet, IPv4 with options, UDP, 12-byte RTP header).
    private static func speechSamples() throws -> [Int16] {
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: speech)))
        var samples: [Int16] = []
        var offset = 24
        while offset + 16 <= file.count {
            let length = Int(file[offset + 8]) | Int(file[offset + 9]) << 8 | Int(file[offset + 10]) << 16
            let frame = offset + 16
            offset = frame + length
            guard offset <= file.count, length > 14 + 20 + 8 + 12 else { break }
            let ip = frame + 14
            let payload = ip + Int(file[ip] & 0x0F) * 4 + 8 + 12
            let aLaw = Array(file[payload..<offset])
            var pcm = [Int16](repeating: 0, count: aLaw.count)
            aLaw.withUnsafeBytes { bytes in pcm.withUnsafeMutableBufferPointer { G711Law.aLaw.decode(bytes, into: $0) } }
            samples += pcm
        }
        guard samples.count >= 160 else { throw BenchError("no audio in \(speech)") }
        return samples
    }

    /// Ethernet/IPv4/UDP/RTP frames 20 ms apart, 127.0.0.1 → 127.0.0.1 (sipp replaces addresses and ports).
    private static func pcapFile(payloadType: UInt8, timestampStep: UInt32, payloads: [[UInt8]]) -> Data {
        var file: [UInt8] = []
        file += le(UInt32(0xA1B2_C3D4)) + le(UInt16(2)) + le(UInt16(4)) + le(UInt32(0)) + le(UInt32(0))
        file += le(UInt32(65535)) + le(UInt32(1))
        for (index, payload) in payloads.enumerated() {
            let marker: UInt8 = index == 0 ? 0x80 : 0
            let rtp = [0x80, marker | payloadType] + be(UInt16(truncatingIfNeeded: index)) + be(UInt32(index) &* timestampStep)
                + be(UInt32(0xBE4C_0001)) + payload
            let udpLength = 8 + rtp.count
            var ip: [UInt8] = [0x45, 0] + be(UInt16(20 + udpLength)) + be(UInt16(truncatingIfNeeded: index)) + [0, 0, 64, 17, 0, 0]
            ip += [127, 0, 0, 1, 127, 0, 0, 1]
            var sum: UInt32 = 0
            for i in stride(from: 0, to: ip.count, by: 2) { sum += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
            while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
            ip[10] = UInt8(~sum >> 8 & 0xFF)
            ip[11] = UInt8(~sum & 0xFF)
            let udp = be(UInt16(40000)) + be(UInt16(40002)) + be(UInt16(udpLength)) + [0, 0]
            let frame: [UInt8] = [0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00] + ip + udp + rtp
            let micros = index * 20_000
            file += le(UInt32(1_700_000_000 + micros / 1_000_000)) + le(UInt32(micros % 1_000_000))
            file += le(UInt32(frame.count)) + le(UInt32(frame.count)) + frame
        }
        return Data(file)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }
private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
