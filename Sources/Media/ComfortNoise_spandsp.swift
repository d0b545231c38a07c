import CSpanDSP

/// Comfort noise (RFC 3389) for the agent while the peer sends CN packets instead of speech: spandsp's Hoth-shaped
/// noise generator at the level the peer's last CN packet gave. Owns one `noise_state_t`; confined to the call's
/// event loop; re-levelling reuses the state, so nothing is allocated after `init`.
final class ComfortNoiseGenerator {
    /// RFC 3389 §3: the level byte is −dBov, 0…127.
    private(set) var level: UInt8 = 127
    private let state: OpaquePointer

    init() throws(MediaError) {
        guard let state = noise_init_dbov(nil, 0x5EED, -127, Int32(NOISE_CLASS_HOTH), 7) else {
            throw MediaError(.libraryFailure, "noise_init_dbov failed")
        }
        self.state = state
    }

    deinit {
        noise_free(state)
    }

    /// Takes the level of a CN payload (its first byte; an empty payload keeps the last level).
    func setLevel(fromPayload payload: UnsafeRawBufferPointer) {
        guard let first = payload.first else { return }
        let newLevel = first & 0x7F
        guard newLevel != level else { return }
        level = newLevel
        _ = noise_init_dbov(state, 0x5EED, -Float(newLevel), Int32(NOISE_CLASS_HOTH), 7)
    }

    func fill(_ samples: UnsafeMutableBufferPointer<Int16>) {
        for i in samples.indices { samples[i] = noise(state) }
    }
}

@available(*, unavailable)
extension ComfortNoiseGenerator: Sendable {}
