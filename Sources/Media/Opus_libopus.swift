import COpus

/// Opus encoder state for one call's outbound stream (RFC 6716 via libopus); owns one `OpusEncoder`.
///
/// Takes 20 ms of mono PCM at the agent's rate and writes one Opus packet. Confined to the call's event loop;
/// `encode` allocates nothing. Public for the benchmark's pcap maker (`trunkline-bench pcap opus`).
public final class OpusFrameEncoder {
    /// libopus' largest packet for one frame.
    public static let maxPacketBytes = 1275
    /// About a third of the CPU of libopus' default (10) for speech quality a listener cannot tell apart.
    static let complexity: Int32 = 5

    let sampleRate: Int
    let channels: Int
    private let encoder: OpaquePointer
    /// Interleaved copy of the mono input when the peer wants stereo.
    private let stereoScratch: UnsafeMutableBufferPointer<Int16>

    /// - Parameters:
    ///   - sampleRate: the rate of the PCM given to `encode` (8, 12, 16, 24 or 48 kHz).
    ///   - peer: what the peer asked to receive (bandwidth, FEC, DTX, stereo, bitrate).
    ///   - frameSamples: mono samples per `encode` call (20 ms at `sampleRate`).
    public init(sampleRate: Int, peer: OpusParameters, frameSamples: Int) throws(MediaError) {
        self.sampleRate = sampleRate
        channels = peer.stereo ? 2 : 1
        var error: Int32 = 0
        guard let encoder = opus_encoder_create(Int32(sampleRate), Int32(channels), OPUS_APPLICATION_VOIP, &error),
              error == OPUS_OK else {
            throw MediaError(.libraryFailure, "opus_encoder_create failed (\(error))")
        }
        self.encoder = encoder
        stereoScratch = .allocate(capacity: frameSamples * 2)
        stereoScratch.initialize(repeating: 0)
        _ = trunkline_opus_set_complexity(encoder, Self.complexity)
        _ = trunkline_opus_set_signal_voice(encoder)
        _ = trunkline_opus_set_max_bandwidth(encoder, Self.bandwidth(forPlaybackRate: peer.maxPlaybackRate))
        if peer.useInbandFEC {
            _ = trunkline_opus_set_inband_fec(encoder, 1)
            // FEC is only coded when the encoder expects loss.
            _ = trunkline_opus_set_packet_loss_perc(encoder, 10)
        }
        if peer.useDTX { _ = trunkline_opus_set_dtx(encoder, 1) }
        if let bitrate = peer.maxAverageBitrate { _ = trunkline_opus_set_bitrate(encoder, Int32(bitrate)) }
    }

    deinit {
        opus_encoder_destroy(encoder)
        stereoScratch.deallocate()
    }

    /// RFC 7587 §6.1: maxplaybackrate maps onto Opus' audio bandwidths.
    static func bandwidth(forPlaybackRate rate: Int) -> Int32 {
        switch rate {
        case ..<12000: OPUS_BANDWIDTH_NARROWBAND
        case ..<16000: OPUS_BANDWIDTH_MEDIUMBAND
        case ..<24000: OPUS_BANDWIDTH_WIDEBAND
        case ..<48000: OPUS_BANDWIDTH_SUPERWIDEBAND
        default: OPUS_BANDWIDTH_FULLBAND
        }
    }

    /// Encodes one frame of mono PCM.
    /// - Returns: the packet's length in `output`, or nil if libopus failed (the caller sends nothing).
    public func encode(_ pcm: UnsafeBufferPointer<Int16>, into output: UnsafeMutableRawBufferPointer) -> Int? {
        var input = pcm.baseAddress!
        if channels == 2 {
            for i in 0..<pcm.count {
                stereoScratch[2 * i] = pcm[i]
                stereoScratch[2 * i + 1] = pcm[i]
            }
            input = UnsafePointer(stereoScratch.baseAddress!)
        }
        let n = opus_encode(
            encoder, input, Int32(pcm.count), output.baseAddress!.assumingMemoryBound(to: UInt8.self),
            Int32(min(output.count, Self.maxPacketBytes)))
        return n > 0 ? Int(n) : nil
    }
}

@available(*, unavailable)
extension OpusFrameEncoder: Sendable {}

/// Opus decoder state for one call's inbound stream; owns one `OpusDecoder`.
///
/// Decodes straight to mono PCM at the agent's rate (libopus resamples and downmixes internally), conceals a lost
/// frame (PLC), or rebuilds it from the next packet's in-band FEC. Confined to the call's event loop; no allocation.
final class OpusFrameDecoder {
    /// The longest Opus packet: 120 ms.
    static let maxPacketMilliseconds = 120

    let sampleRate: Int
    private let decoder: OpaquePointer

    init(sampleRate: Int) throws(MediaError) {
        self.sampleRate = sampleRate
        var error: Int32 = 0
        guard let decoder = opus_decoder_create(Int32(sampleRate), 1, &error), error == OPUS_OK else {
            throw MediaError(.libraryFailure, "opus_decoder_create failed (\(error))")
        }
        self.decoder = decoder
    }

    deinit {
        opus_decoder_destroy(decoder)
    }

    /// Samples of the largest packet at this rate: the size `output` buffers must have.
    var maxFrameSamples: Int { sampleRate * Self.maxPacketMilliseconds / 1000 }

    /// Decodes one packet.
    /// - Returns: samples written, or nil for a packet libopus rejects (corrupt).
    func decode(_ packet: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>) -> Int? {
        guard packet.count > 0 else { return nil }
        let n = opus_decode(
            decoder, packet.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(packet.count), output.baseAddress!,
            Int32(output.count), 0)
        return n > 0 ? Int(n) : nil
    }

    /// Fills `output` (exactly its length, a multiple of 2.5 ms) for a lost frame: from `next`'s in-band FEC
    /// when the following packet is at hand, else by packet-loss concealment.
    func conceal(into output: UnsafeMutableBufferPointer<Int16>, next: UnsafeRawBufferPointer? = nil) -> Int {
        var n: Int32
        if let next, next.count > 0 {
            n = opus_decode(
                decoder, next.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(next.count), output.baseAddress!,
                Int32(output.count), 1)
        } else {
            n = -1
        }
        if n <= 0 { n = opus_decode(decoder, nil, 0, output.baseAddress!, Int32(output.count), 0) }
        guard n > 0 else {
            output.update(repeating: 0)
            return output.count
        }
        return Int(n)
    }
}

@available(*, unavailable)
extension OpusFrameDecoder: Sendable {}
