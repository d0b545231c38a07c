/// A carrier's verification verdict (3GPP TS 24.229 `verstat`), as Twilio (`X-Twilio-VerStat` header), Telnyx
/// (`verstat` URI parameter of P-Asserted-Identity) and Plivo (`verstat` in the user part) send it.
///
/// Parsing never decides trust: only the gateway knows whether the trunk is a carrier whose verstat counts.
public struct CarrierVerstat: Sendable, Equatable {
    public enum Outcome: String, Sendable, Hashable {
        case passed, failed, noValidation
    }

    public var outcome: Outcome
    /// From a `-A`/`-B`/`-C` suffix; nil when the carrier gave none (Telnyx's bare "Passed" means A, but we do not guess).
    public var attestation: Attestation?
    /// Other suffixes, e.g. `Diverted`, `Passthrough`.
    public var qualifiers: [String]
    /// The value as received.
    public var raw: String

    /// Parses one verstat token (`TN-Validation-Passed-A`, `tn-validation-failed`, `No-TN-Validation`, `NULL`…),
    /// case-insensitively; nil for anything else.
    public static func parse(_ value: String) -> CarrierVerstat? {
        let raw = IdentityHeader.unquote(String(Substring(value).trimmingSpaces()))
        guard !raw.isEmpty, raw.utf8.count <= 128 else { return nil }
        let lower = raw.lowercased()
        let outcome: Outcome
        let rest: Substring
        if lower.hasPrefix("tn-validation-passed") {
            outcome = .passed
            rest = raw.dropFirst("tn-validation-passed".count)
        } else if lower.hasPrefix("tn-validation-failed") {
            outcome = .failed
            rest = raw.dropFirst("tn-validation-failed".count)
        } else if lower.hasPrefix("no-tn-validation") {
            outcome = .noValidation
            rest = raw.dropFirst("no-tn-validation".count)
        } else if lower == "null" {
            return CarrierVerstat(outcome: .noValidation, attestation: nil, qualifiers: [], raw: raw)
        } else {
            return nil
        }
        guard rest.isEmpty || rest.hasPrefix("-") else { return nil }
        var attestation: Attestation?
        var qualifiers: [String] = []
        for part in rest.split(separator: "-") {
            if attestation == nil, let level = Attestation(rawValue: part.uppercased()) {
                attestation = level
            } else {
                qualifiers.append(String(part))
            }
        }
        return CarrierVerstat(outcome: outcome, attestation: attestation, qualifiers: qualifiers, raw: raw)
    }

    /// Finds `verstat=` in a P-Asserted-Identity or From header value: URI parameter, user-part parameter
    /// (`<sip:+1…;verstat=…@host>`) or header parameter. Nil when absent or unrecognised.
    public static func fromURIHeader(_ headerValue: String) -> CarrierVerstat? {
        guard headerValue.utf8.count <= 4096 else { return nil }
        let lower = headerValue.lowercased()
        var searchStart = lower.startIndex
        while let range = lower.range(of: "verstat=", range: searchStart..<lower.endIndex) {
            searchStart = range.upperBound
            if range.lowerBound > lower.startIndex {
                let before = lower[lower.index(before: range.lowerBound)]
                guard before == ";" || before == " " else { continue }
            }
            // Same offsets in the original (lowercasing ASCII keeps UTF-8 offsets for these characters).
            let offset = lower.utf8.distance(from: lower.startIndex, to: range.upperBound)
            let valueStart = headerValue.utf8.index(headerValue.startIndex, offsetBy: offset)
            let value = headerValue[valueStart...].prefix { !";>@,& \t\r\n".contains($0) }
            if let parsed = parse(String(value)) { return parsed }
        }
        return nil
    }

    /// Picks the carrier verstat from an INVITE's headers: `X-Twilio-VerStat` first, then P-Asserted-Identity, then From.
    public static func find(twilioVerStat: String?, pAssertedIdentity: [String], from: String?) -> CarrierVerstat? {
        if let twilioVerStat, let parsed = parse(twilioVerStat) { return parsed }
        for value in pAssertedIdentity {
            if let parsed = fromURIHeader(value) { return parsed }
        }
        if let from, let parsed = fromURIHeader(from) { return parsed }
        return nil
    }

    /// The carrier's word as a verdict (`source == .carrier`).
    public var verdict: IdentityVerdict {
        switch outcome {
        case .passed:
            return IdentityVerdict(status: .valid, attestation: attestation, source: .carrier)
        case .failed:
            return IdentityVerdict(
                status: .invalid,
                reason: IdentityReason(.carrierFailed, "carrier reported \(raw)"),
                source: .carrier
            )
        case .noValidation:
            return IdentityVerdict(
                status: .absent,
                reason: IdentityReason(.carrierNoValidation, "carrier reported \(raw)"),
                source: .carrier
            )
        }
    }
}

extension IdentityVerdict {
    /// Merges a local verdict with a carrier verstat the caller has decided to trust.
    ///
    /// - Parameters:
    ///   - local: what ``IdentityVerifier`` found (often `.absent`: carriers frequently strip Identity).
    ///   - carrier: verstat from a trusted trunk, or nil.
    ///   - preferCarrier: use the carrier's verdict even when a local one exists.
    /// - Returns: the local verdict unless it is `.absent` or `preferCarrier` is set and a carrier verdict exists.
    public static func combine(local: IdentityVerdict, carrier: CarrierVerstat?, preferCarrier: Bool) -> IdentityVerdict {
        guard let carrier else { return local }
        guard preferCarrier || local.status == .absent else { return local }
        var verdict = carrier.verdict
        if local.status != .absent {
            verdict.warnings.append("local verdict \(local.status.rawValue) overridden by carrier verstat")
        }
        verdict.warnings += local.warnings
        return verdict
    }
}
