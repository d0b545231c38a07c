import CSpanDSP

/// Finds DTMF tones in 8 kHz audio (spandsp's Goertzel detector), for legs that negotiated no telephone-event.
///
/// Owns its spandsp state (freed in `deinit`); confined to the owning session's event loop.
final class InbandDTMFDetector {
    private let state: OpaquePointer
    /// Where spandsp hands back the digits it found; read after every frame, so a few bytes suffice.
    private let found: UnsafeMutablePointer<CChar>
    private static let foundCapacity: Int32 = 16

    init?() {
        guard let state = dtmf_rx_init(nil, nil, nil) else { return nil }
        self.state = state
        found = .allocate(capacity: Int(Self.foundCapacity))
    }

    deinit {
        dtmf_rx_free(state)
        found.deallocate()
    }

    /// Runs the detector over one frame and calls `report` for each key that ended in it.
    func process(_ samples: UnsafeBufferPointer<Int16>, report: (Character) -> Void) {
        guard let base = samples.baseAddress else { return }
        dtmf_rx(state, base, Int32(samples.count))
        let count = dtmf_rx_get(state, found, Self.foundCapacity - 1)
        for index in 0..<count {
            report(Character(Unicode.Scalar(UInt8(bitPattern: found[index]))))
        }
    }
}
