import Crypto
import Foundation
import Logging

/// The STIR/SHAKEN verification service (STI-VS, ATIS-1000074) for inbound INVITEs.
///
/// Thread-safe (`Sendable`): one instance serves every call; certificates are cached across calls.
/// Every outcome is an ``IdentityVerdict`` value — nothing throws. Call ``shutdown()`` once at exit.
public final class IdentityVerifier: Sendable {
    public let configuration: IdentityConfiguration
    private let fetcher: any CertificateFetching
    private let ownedFetcher: HTTPCertificateFetcher?
    private let validator: ChainValidator
    private let cache: CredentialCache
    private let logger: Logger

    /// Creates a verifier that fetches certificates with AsyncHTTPClient.
    /// - Throws: ``IdentityConfigurationError``-like faults only for unusable TLS roots in `configuration.fetch`.
    public convenience init(configuration: IdentityConfiguration, logger: Logger) throws {
        let fetcher = try HTTPCertificateFetcher(configuration: configuration.fetch, logger: logger)
        self.init(configuration: configuration, fetcher: fetcher, owned: fetcher, logger: logger)
    }

    /// Creates a verifier with an injected fetcher (tests, alternative transports).
    public convenience init(configuration: IdentityConfiguration, fetcher: any CertificateFetching, logger: Logger) {
        self.init(configuration: configuration, fetcher: fetcher, owned: nil, logger: logger)
    }

    private init(
        configuration: IdentityConfiguration,
        fetcher: any CertificateFetching,
        owned: HTTPCertificateFetcher?,
        logger: Logger
    ) {
        self.configuration = configuration
        self.fetcher = fetcher
        self.ownedFetcher = owned
        self.validator = ChainValidator(trustAnchors: configuration.trustAnchors)
        self.cache = CredentialCache(maximumEntries: configuration.maximumCacheEntries)
        self.logger = logger
    }

    /// Shuts down the HTTP client this verifier created (not an injected fetcher).
    public func shutdown() async {
        await ownedFetcher?.shutdown()
    }

    /// Number of credentials currently cached (for metrics and tests).
    public func cachedCredentialCount() async -> Int { await cache.count }

    /// Verifies the Identity header(s) of one INVITE.
    ///
    /// - Parameters:
    ///   - identityHeaders: every `Identity` header value, in order; headers with `ppt` other than `shaken` are skipped.
    ///   - caller: the calling identity (P-Asserted-Identity if present, else From): a number, tel: or sip: URI or
    ///     full header value; compared with `orig.tn` after canonicalisation.
    ///   - called: the called number (Request-URI or To), compared with `dest.tn`.
    ///   - now: the current time (tests pass a fixed one).
    /// - Returns: `.absent` (428) without a SHAKEN Identity header, `.valid` with the attestation, or `.invalid` with
    ///   the first failing check's reason. With several SHAKEN headers the first valid one wins.
    public func verify(identityHeaders: [String], caller: String, called: String, now: Date) async -> IdentityVerdict {
        var warnings: [String] = []
        var headers = identityHeaders
        if headers.count > configuration.maximumIdentityHeaders {
            warnings.append("ignored \(headers.count - configuration.maximumIdentityHeaders) extra Identity headers")
            headers = Array(headers.prefix(configuration.maximumIdentityHeaders))
        }
        var firstFailure: IdentityVerdict?
        var candidates = 0
        for value in headers {
            let header: IdentityHeader
            switch IdentityHeader.parse(value) {
            case .failure(let reason):
                candidates += 1
                if firstFailure == nil { firstFailure = IdentityVerdict(status: .invalid, reason: reason) }
                continue
            case .success(let parsed):
                header = parsed
            }
            if let ppt = header.ppt, ppt.lowercased() != "shaken" {
                warnings.append("skipped Identity header with ppt=\(ppt.prefix(16))")
                continue
            }
            candidates += 1
            var verdict = await verifyOne(header, caller: caller, called: called, now: now)
            if verdict.status == .valid {
                verdict.warnings = warnings + verdict.warnings
                log(verdict)
                return verdict
            }
            if firstFailure == nil { firstFailure = verdict }
        }
        var verdict =
            firstFailure
            ?? .absent(
                IdentityReason(
                    .noIdentity,
                    candidates == 0 && !identityHeaders.isEmpty ? "no Identity header with ppt=shaken" : "no Identity header"
                )
            )
        verdict.warnings = warnings + verdict.warnings
        log(verdict)
        return verdict
    }

    private func log(_ verdict: IdentityVerdict) {
        logger.debug(
            "stir verdict",
            metadata: [
                "stir_status": "\(verdict.status.rawValue)",
                "stir_attestation": "\(verdict.attestation?.rawValue ?? "-")",
                "stir_reason": "\(verdict.reason.map { "\($0)" } ?? "-")",
            ]
        )
    }

    /// Checks one parsed SHAKEN Identity header in the order of reference-compliance.md §1.8.
    func verifyOne(_ header: IdentityHeader, caller: String, called: String, now: Date) async -> IdentityVerdict {
        var warnings = header.warnings
        func fail(_ code: IdentityReason.Code, _ detail: String, _ passport: PASSporT? = nil) -> IdentityVerdict {
            IdentityVerdict(
                status: .invalid,
                reason: IdentityReason(code, detail),
                warnings: warnings,
                origTN: passport.map { TelephoneNumber.canonical($0.claims.origTN) ?? $0.claims.origTN },
                destTN: passport?.claims.destTNs ?? [],
                origID: passport?.claims.origID
            )
        }

        if let alg = header.alg, alg != "ES256" {
            return fail(.unsupportedAlgorithm, "Identity alg=\(alg.prefix(16)) is not ES256")
        }
        guard let info = header.info else { return fail(.infoMissing, "Identity header has no info parameter") }

        let passport: PASSporT
        switch PASSporT.parse(header.passport) {
        case .success(let value): passport = value
        case .failure(let reason): return fail(reason.code, reason.detail)
        }
        guard passport.header.x5u == info else {
            return fail(.x5uMismatch, "info URI differs from PASSporT x5u", passport)
        }

        let age = now.timeIntervalSince1970 - TimeInterval(passport.claims.iat)
        if age > configuration.maximumIATAge {
            return fail(.staleIAT, "iat is \(Int(age)) s old (limit \(Int(configuration.maximumIATAge)) s)", passport)
        }
        if -age > configuration.maximumFutureSkew {
            return fail(.futureIAT, "iat is \(Int(-age)) s in the future", passport)
        }

        let url: X5UURL
        switch X5UURL.validate(passport.header.x5u, standardPorts: configuration.standardX5UPorts, warnings: &warnings) {
        case .success(let value): url = value
        case .failure(let reason): return fail(reason.code, reason.detail, passport)
        }

        let credential: SigningCredential
        switch await loadCredential(url, now: now) {
        case .success(let value): credential = value
        case .failure(let reason): return fail(reason.code, reason.detail, passport)
        }
        if now > credential.validUntil {
            return fail(.certificateExpired, "certificate chain expired at \(credential.validUntil)", passport)
        }
        if now < credential.validFrom {
            return fail(.certificateNotYetValid, "certificate chain not valid before \(credential.validFrom)", passport)
        }
        warnings += credential.warnings

        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: passport.signature),
            credential.leafKey.isValidSignature(signature, for: passport.signingInput)
        else {
            return fail(.badSignature, "ES256 signature does not verify with the x5u certificate key", passport)
        }

        let origTN = TelephoneNumber.canonical(passport.claims.origTN)
        guard let origTN, let callerTN = TelephoneNumber.canonical(caller), origTN == callerTN else {
            return fail(.origMismatch, "orig.tn does not match the calling number", passport)
        }
        let destTNs = passport.claims.destTNs.compactMap(TelephoneNumber.canonical)
        guard let calledTN = TelephoneNumber.canonical(called), destTNs.contains(calledTN) else {
            return fail(.destMismatch, "dest.tn does not contain the called number", passport)
        }

        return IdentityVerdict(
            status: .valid,
            attestation: passport.claims.attest,
            reason: nil,
            warnings: warnings,
            source: .local,
            origTN: origTN,
            destTN: destTNs,
            origID: passport.claims.origID,
            spc: credential.spc
        )
    }

    private func loadCredential(_ url: X5UURL, now: Date) async -> Result<SigningCredential, IdentityReason> {
        let fetcher = self.fetcher
        let validator = self.validator
        let configuration = self.configuration
        return await cache.credential(for: url.url, now: now) {
            let document: FetchedDocument
            switch await fetcher.fetch(url) {
            case .success(let value): document = value
            case .failure(let reason): return (.failure(reason), now)
            }
            let result = await validator.validate(document, now: now)
            guard case .success(let credential) = result else { return (result, now) }
            let lifetime = min(
                CredentialCache.requestedLifetime(cacheControl: document.cacheControl) ?? configuration.defaultCacheTTL,
                configuration.maximumCacheTTL
            )
            return (result, min(now.addingTimeInterval(lifetime), credential.validUntil))
        }
    }
}
