import CSpanDSP

/// Packet-loss concealment for G.711 (spandsp's, after ITU-T G.711 Appendix I); owns one `plc_state_t`.
///
/// Every good frame goes through `received` so the concealer knows the recent pitch; `fill` then synthesises a
/// lost frame from it, fading out over a long gap. Confined to the call's event loop; no allocation.
final class G711Concealer {
    private let state: UnsafeMutablePointer<plc_state_t>

    init() throws(MediaError) {
        guard let state = plc_init(nil) else { throw MediaError(.libraryFailure, "plc_init failed") }
        self.state = state
    }

    deinit {
        plc_free(state)
    }

    /// Records a good decoded frame (spandsp may smooth its start after a concealed gap).
    func received(_ samples: UnsafeMutableBufferPointer<Int16>) {
        _ = plc_rx(state, samples.baseAddress, Int32(samples.count))
    }

    /// Fills `samples` in place of a lost frame.
    func fill(_ samples: UnsafeMutableBufferPointer<Int16>) {
        _ = plc_fillin(state, samples.baseAddress, Int32(samples.count))
    }
}

@available(*, unavailable)
extension G711Concealer: Sendable {}
