import CSpanDSP

/// G.711 companding laws (ITU-T G.711), through spandsp's per-sample helpers.
///
/// Works on caller-provided buffers so the media path never allocates per packet. Encoding looks each sample up in
/// a 64 KB table per law, made once from spandsp's function: a lookup instead of thirty-odd instructions a sample.
public enum G711Law: String, Sendable, Hashable {
    case muLaw
    case aLaw

    /// Compands `pcm` into `output`; both must hold the same number of samples.
    @inlinable
    public func encode(_ pcm: UnsafeBufferPointer<Int16>, into output: UnsafeMutableBufferPointer<UInt8>) {
        precondition(output.count >= pcm.count, "G.711 output buffer too small")
        let table = self == .muLaw ? G711Law.muLawTable : G711Law.aLawTable
        table.withUnsafeBufferPointer { table in
            for i in 0..<pcm.count { output[i] = table[Int(UInt16(bitPattern: pcm[i]))] }
        }
    }

    /// The code of every 16-bit sample, indexed by its bit pattern.
    @usableFromInline static let muLawTable: [UInt8] = (0...0xFFFF).map { linear_to_ulaw(Int32(Int16(bitPattern: UInt16($0)))) }
    @usableFromInline static let aLawTable: [UInt8] = (0...0xFFFF).map { linear_to_alaw(Int32(Int16(bitPattern: UInt16($0)))) }

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
