internal import CSRTP

/// One direction of SRTP (RFC 3711) for one call: owns one libsrtp `srtp_t`, freed in `deinit`.
///
/// Confined to the call's event loop like the session that owns it (libsrtp contexts are not thread-safe).
/// `protect`/`unprotect` work in place on the caller's buffer and allocate nothing.
final class SRTPStream {
    enum Direction { case inbound, outbound }

    /// Bytes `protect` may append, and that libsrtp requires writable after any packet it is given.
    static let maxTrailer = Int(SRTP_MAX_TRAILER_LEN)

    /// What `unprotect` made of a packet.
    enum Verdict {
        case ok(length: Int)
        case authenticationFailed
        case replayed
        /// Anything else libsrtp refused (too short, bad header).
        case failed
    }

    private let session: srtp_t

    /// libsrtp's `srtp_init` runs once per process, before the first context (a Swift global is initialised once,
    /// thread-safely).
    private static let initialized: Bool = srtp_init() == srtp_err_status_ok

    init(key: SRTPKey, direction: Direction) throws(MediaError) {
        guard Self.initialized else { throw MediaError(.libraryFailure, "srtp_init failed") }
        var policy = srtp_policy_t()
        Self.setCryptoPolicy(&policy, for: key.suite)
        policy.ssrc.type = direction == .inbound ? ssrc_any_inbound : ssrc_any_outbound
        // Long enough for a burst of reordered packets; the default is 128.
        policy.window_size = 1024
        policy.allow_repeat_tx = 0
        var created: srtp_t?
        // srtp_create copies the key, so it need only live for the call.
        var material = key.material
        let status = material.withUnsafeMutableBufferPointer { bytes in
            policy.key = bytes.baseAddress
            return srtp_create(&created, &policy)
        }
        guard status == srtp_err_status_ok, let created else {
            throw MediaError(.libraryFailure, "srtp_create failed for \(key.suite.rawValue) (libsrtp status \(status.rawValue))")
        }
        session = created
    }

    deinit {
        srtp_dealloc(session)
    }

    /// Whether this libsrtp can run `suite` (AES-GCM depends on how it was built).
    static func canCreate(_ suite: SRTPSuite) -> Bool {
        (try? SRTPStream(key: SRTPKey(suite: suite, material: Array(repeating: 0, count: suite.keyMaterialLength)), direction: .outbound)) != nil
    }

    private static func setCryptoPolicy(_ policy: inout srtp_policy_t, for suite: SRTPSuite) {
        switch suite {
        case .aesCM128HmacSHA1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtp_default(&policy.rtcp)
        case .aesCM128HmacSHA1_32:
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp)
            // RFC 4568 §6.2.2: SRTCP keeps the 80-bit tag with this suite.
            srtp_crypto_policy_set_rtp_default(&policy.rtcp)
        case .aes256CMHmacSHA1_80:
            srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&policy.rtp)
            srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&policy.rtcp)
        case .aeadAES128GCM:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        }
    }

    /// Encrypts and authenticates the RTP packet of `length` bytes at `packet` in place.
    /// - Parameter capacity: bytes writable at `packet`; must be at least `length + maxTrailer`.
    /// - Returns: the SRTP packet's length, or nil if libsrtp refused it.
    func protect(_ packet: UnsafeMutableRawPointer, length: Int, capacity: Int) -> Int? {
        precondition(capacity >= length + Self.maxTrailer, "SRTP needs room for its trailer")
        var n = Int32(length)
        guard srtp_protect(session, packet, &n) == srtp_err_status_ok else { return nil }
        return Int(n)
    }

    /// Bytes `protectRTCP` may append: the SRTCP index word and the trailer.
    static let maxRTCPTrailer = Int(SRTP_MAX_TRAILER_LEN) + 4

    /// SRTCP (RFC 3711 §3.4): encrypts and authenticates the compound RTCP packet at `packet` in place.
    /// - Parameter capacity: at least `length + maxRTCPTrailer`.
    /// - Returns: the SRTCP packet's length, or nil if libsrtp refused it.
    func protectRTCP(_ packet: UnsafeMutableRawPointer, length: Int, capacity: Int) -> Int? {
        precondition(capacity >= length + Self.maxRTCPTrailer, "SRTCP needs room for its index and trailer")
        var n = Int32(length)
        guard srtp_protect_rtcp(session, packet, &n) == srtp_err_status_ok else { return nil }
        return Int(n)
    }

    /// SRTCP: authenticates and decrypts the packet at `packet` in place.
    func unprotectRTCP(_ packet: UnsafeMutableRawPointer, length: Int, capacity: Int) -> Verdict {
        precondition(capacity >= length + Self.maxTrailer, "libsrtp may write past the packet")
        var n = Int32(length)
        return Self.verdict(srtp_unprotect_rtcp(session, packet, &n), length: n)
    }

    private static func verdict(_ status: srtp_err_status_t, length: Int32) -> Verdict {
        switch status {
        case srtp_err_status_ok: .ok(length: Int(length))
        case srtp_err_status_auth_fail: .authenticationFailed
        case srtp_err_status_replay_fail, srtp_err_status_replay_old: .replayed
        default: .failed
        }
    }

    /// Authenticates and decrypts the SRTP packet of `length` bytes at `packet` in place.
    /// - Parameter capacity: bytes writable at `packet`; must be at least `length + maxTrailer`.
    func unprotect(_ packet: UnsafeMutableRawPointer, length: Int, capacity: Int) -> Verdict {
        precondition(capacity >= length + Self.maxTrailer, "libsrtp may write past the packet")
        var n = Int32(length)
        return Self.verdict(srtp_unprotect(session, packet, &n), length: n)
    }
}

@available(*, unavailable)
extension SRTPStream: Sendable {}
