import CSpanDSP

/// G.711 companding laws (ITU-T G.711), through spandsp's per-sample helpers.
///
/// Works on caller-provided buffers so the media path never allocates per packet.
public enum G711Law: String, Sendable, Hashable {
    case muLaw
    case aLaw

    /// Compands `pcm` into `output`; both must hold the same number of samples.
    @inlinable
    public func encode(_ pcm: UnsafeBufferPointer<Int16>, into output: UnsafeMutableBufferPointer<UInt8>) {
        precondition(output.count >= pcm.count, "G.711 output buffer too small")
        switch self {
        case .muLaw:
            for i in 0..<pcm.count { output[i] = linear_to_ulaw(Int32(pcm[i])) }
        case .aLaw:
            for i in 0..<pcm.count { output[i] = linear_to_alaw(Int32(pcm[i])) }
        }
    }

    /// Expands `encoded` into `output`; both must hold the same number of samples.
    @inlinable
    public func decode(_ encoded: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>) {
        precondition(output.count >= encoded.count, "G.711 output buffer too small")
        switch self {
        case .muLaw:
            for i in 0..<encoded.count { output[i] = ulaw_to_linear(encoded[i]) }
        case .aLaw:
            for i in 0..<encoded.count { output[i] = alaw_to_linear(encoded[i]) }
        }
    }

    /// The code for digital silence in this law (what a paused stream carries).
    public var silence: UInt8 { self == .muLaw ? 0xFF : 0xD5 }
}
