/// SHAKEN attestation level (RFC 8588 §4): A full, B partial, C gateway.
public enum Attestation: String, Sendable, Hashable, CaseIterable {
    case a = "A"
    case b = "B"
    case c = "C"
}

/// The outcome of checking a call's caller identity: a value, never a thrown error.
///
/// Default gateway policy is "continue and annotate"; rejecting with ``IdentityReason/sipStatus`` is a dialplan choice.
public struct IdentityVerdict: Sendable, Equatable {
    public enum Status: String, Sendable, Hashable {
        /// A SHAKEN PASSporT verified (or a trusted carrier said TN-Validation-Passed).
        case valid
        /// An Identity header was present but failed (or the carrier said TN-Validation-Failed).
        case invalid
        /// No usable Identity header (or the carrier said No-TN-Validation).
        case absent
    }

    public enum Source: String, Sendable, Hashable {
        /// Verified here, from the Identity header.
        case local
        /// Taken from a trusted carrier's verstat.
        case carrier
    }

    public var status: Status
    public var attestation: Attestation?
    /// Why the verdict is not a plain valid one; nil when ``status`` is `.valid`.
    public var reason: IdentityReason?
    /// Deviations from the ATIS profile that did not fail the verification (missing policy OID, odd port, …).
    public var warnings: [String]
    public var source: Source
    /// `orig.tn` from the PASSporT (digits only), when it could be read.
    public var origTN: String?
    /// `dest.tn` from the PASSporT (digits only), when it could be read.
    public var destTN: [String]
    /// `origid` from the PASSporT.
    public var origID: String?
    /// The signer's Service Provider Code from the certificate's TNAuthList.
    public var spc: String?

    public init(
        status: Status,
        attestation: Attestation? = nil,
        reason: IdentityReason? = nil,
        warnings: [String] = [],
        source: Source = .local,
        origTN: String? = nil,
        destTN: [String] = [],
        origID: String? = nil,
        spc: String? = nil
    ) {
        self.status = status
        self.attestation = attestation
        self.reason = reason
        self.warnings = warnings
        self.source = source
        self.origTN = origTN
        self.destTN = destTN
        self.origID = origID
        self.spc = spc
    }

    /// The verdict as a 3GPP TS 24.229 `verstat` value (`TN-Validation-Passed-A`, `TN-Validation-Failed`, `No-TN-Validation`).
    public var verstat: String {
        switch status {
        case .valid: return "TN-Validation-Passed" + (attestation.map { "-\($0.rawValue)" } ?? "")
        case .invalid: return "TN-Validation-Failed" + (attestation.map { "-\($0.rawValue)" } ?? "")
        case .absent: return "No-TN-Validation"
        }
    }

    /// A flat, ordered key/value form for the agent's `customParameters`, the call record and dialplan matching.
    ///
    /// Keys: `stir_status`, `stir_verstat`, `stir_source`, then when known `stir_attestation`, `stir_reason_code`
    /// (SIP status), `stir_reason` (machine code), `stir_reason_text`, `stir_orig_tn`, `stir_dest_tn`,
    /// `stir_origid`, `stir_spc`, `stir_warnings` (joined with "; ").
    public var parameters: [(String, String)] {
        var out: [(String, String)] = [
            ("stir_status", status.rawValue),
            ("stir_verstat", verstat),
            ("stir_source", source.rawValue),
        ]
        if let attestation { out.append(("stir_attestation", attestation.rawValue)) }
        if let reason {
            out.append(("stir_reason_code", String(reason.sipStatus)))
            out.append(("stir_reason", reason.code.description))
            out.append(("stir_reason_text", reason.detail))
        }
        if let origTN { out.append(("stir_orig_tn", origTN)) }
        if !destTN.isEmpty { out.append(("stir_dest_tn", destTN.joined(separator: ","))) }
        if let origID { out.append(("stir_origid", origID)) }
        if let spc { out.append(("stir_spc", spc)) }
        if !warnings.isEmpty { out.append(("stir_warnings", warnings.joined(separator: "; "))) }
        return out
    }

    static func absent(_ reason: IdentityReason, warnings: [String] = []) -> IdentityVerdict {
        IdentityVerdict(status: .absent, reason: reason, warnings: warnings)
    }
}
