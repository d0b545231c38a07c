import Crypto
import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// A signer's credential after its chain checked out: what signature verification and the verdict need.
public struct SigningCredential: Sendable {
    public var leafKey: P256.Signing.PublicKey
    public var spc: String
    /// ATIS profile deviations (policy OID, CN form, SPC charset, CRL DP…).
    public var warnings: [String]
    /// Latest notBefore and earliest notAfter over the validated chain.
    public var validFrom: Date
    public var validUntil: Date
}

/// Builds and checks the x5u chain against the configured STI-CA trust anchors (never system roots), then the
/// SHAKEN leaf rules: P-256 key, validity dates, TNAuthList with exactly one SPC. Profile lints become warnings.
struct ChainValidator: Sendable {
    static let certificatePoliciesOID: ASN1ObjectIdentifier = [2, 5, 29, 32]
    static let crlDistributionPointsOID: ASN1ObjectIdentifier = [2, 5, 29, 31]
    static let shakenPolicies: Set<ASN1ObjectIdentifier> = [
        [2, 16, 840, 1, 114569, 1, 1, 3], [2, 16, 840, 1, 114569, 1, 1, 4],
    ]
    static let maximumChainLength = 8

    let trustAnchors: [Certificate]

    func validate(_ document: FetchedDocument, now: Date) async -> Result<SigningCredential, IdentityReason> {
        var warnings: [String] = []
        let certificates: [Certificate]
        switch Self.parseChain(document.body, warnings: &warnings) {
        case .success(let value): certificates = value
        case .failure(let reason): return .failure(reason)
        }
        if let type = document.contentType?.lowercased(), !type.hasPrefix("application/pem-certificate-chain") {
            warnings.append("x5u Content-Type is \(type), not application/pem-certificate-chain")
        }
        let leaf = certificates[0]

        guard let key = P256.Signing.PublicKey(leaf.publicKey) else {
            return .failure(.init(.certificateUnsupportedKey, "leaf key is not EC P-256"))
        }
        if now < leaf.notValidBefore {
            return .failure(.init(.certificateNotYetValid, "leaf certificate not valid before \(leaf.notValidBefore)"))
        }
        if now > leaf.notValidAfter {
            return .failure(.init(.certificateExpired, "leaf certificate expired at \(leaf.notValidAfter)"))
        }

        var verifier = Verifier(rootCertificates: CertificateStore(trustAnchors)) {
            RFC5280Policy(fixedExpiryValidationTime: now)
            TNAuthListCriticalExtensionPolicy()
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropFirst()))
        let chain: [Certificate]
        switch result {
        case .validCertificate(let validated):
            chain = Array(validated)
        case .couldNotValidate(let failures):
            let why = failures.first.map { String(describing: $0.policyFailureReason) }
                ?? "no path to a configured STI-CA trust anchor"
            return .failure(.init(.chainUntrusted, "certificate chain not trusted: \(why)"))
        }

        guard let tnExtension = leaf.extensions[oid: TNAuthList.oid] else {
            return .failure(.init(.tnAuthListMissing, "leaf certificate has no TNAuthList extension"))
        }
        let tnAuthList: TNAuthList
        switch TNAuthList.parse(tnExtension.value) {
        case .success(let value): tnAuthList = value
        case .failure(let reason): return .failure(reason)
        }
        guard tnAuthList.spcs.count == 1, let spc = tnAuthList.spcs.first else {
            return .failure(.init(.tnAuthListInvalid, "TNAuthList must hold exactly one SPC, found \(tnAuthList.spcs.count)"))
        }
        warnings += tnAuthList.warnings
        warnings += Self.profileLints(leaf: leaf, spc: spc)

        let validFrom = chain.map(\.notValidBefore).max() ?? leaf.notValidBefore
        let validUntil = chain.map(\.notValidAfter).min() ?? leaf.notValidAfter
        return .success(
            SigningCredential(leafKey: key, spc: spc, warnings: warnings, validFrom: validFrom, validUntil: validUntil)
        )
    }

    /// PEM chain, leaf first (DER of a single certificate accepted with a warning).
    static func parseChain(_ body: [UInt8], warnings: inout [String]) -> Result<[Certificate], IdentityReason> {
        let text = String(decoding: body, as: UTF8.self)
        if text.contains("-----BEGIN") {
            guard let documents = try? PEMDocument.parseMultiple(pemString: text) else {
                return .failure(.init(.certificateMalformed, "x5u body is not valid PEM"))
            }
            let certificateDocuments = documents.filter { $0.discriminator == "CERTIFICATE" }
            guard !certificateDocuments.isEmpty else {
                return .failure(.init(.certificateMalformed, "x5u body holds no CERTIFICATE"))
            }
            guard certificateDocuments.count <= maximumChainLength else {
                return .failure(.init(.certificateMalformed, "x5u chain longer than \(maximumChainLength)"))
            }
            var certificates: [Certificate] = []
            for document in certificateDocuments {
                guard let certificate = try? Certificate(pemDocument: document) else {
                    return .failure(.init(.certificateMalformed, "x5u certificate does not parse"))
                }
                certificates.append(certificate)
            }
            return .success(certificates)
        }
        guard let certificate = try? Certificate(derEncoded: body) else {
            return .failure(.init(.certificateMalformed, "x5u body is neither PEM nor a DER certificate"))
        }
        warnings.append("x5u served DER, not a PEM chain")
        return .success([certificate])
    }

    /// ATIS-1000080 profile rules that many live certificates break: reported, never failed.
    static func profileLints(leaf: Certificate, spc: String) -> [String] {
        var warnings: [String] = []
        if let policies = leaf.extensions[oid: certificatePoliciesOID] {
            let oids = policyOIDs(policies.value)
            if oids.isEmpty || !oids.contains(where: { shakenPolicies.contains($0) }) {
                warnings.append("certificate policy is not a SHAKEN CP OID (2.16.840.1.114569.1.1.3/.4)")
            }
        } else {
            warnings.append("certificate has no certificate-policies extension (ATIS-1000080)")
        }
        if leaf.extensions[oid: crlDistributionPointsOID] == nil {
            warnings.append("certificate has no CRL distribution point (ATIS-1000080)")
        }
        if !spc.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || ("A"..."Z").contains($0) }) {
            warnings.append("SPC \(spc) has characters other than digits and upper-case letters")
        }
        var commonName: String?
        for rdn in leaf.subject {
            for attribute in rdn where attribute.type == ASN1ObjectIdentifier.RDNAttributeType.commonName {
                commonName = String(describing: attribute.value)
            }
        }
        if commonName != "SHAKEN \(spc)" {
            warnings.append("subject CN is \(commonName ?? "absent"), not \"SHAKEN \(spc)\"")
        }
        return warnings
    }

    private static func policyOIDs(_ bytes: ArraySlice<UInt8>) -> [ASN1ObjectIdentifier] {
        guard let root = try? DER.parse(bytes), case .constructed(let entries) = root.content else { return [] }
        var oids: [ASN1ObjectIdentifier] = []
        for entry in entries {
            guard case .constructed(let fields) = entry.content, let first = fields.first(where: { _ in true }),
                let oid = try? ASN1ObjectIdentifier(derEncoded: first)
            else { continue }
            oids.append(oid)
        }
        return oids
    }
}

/// Declares TNAuthList as understood so a certificate marking it critical still chains; the extension itself is
/// checked after chain building, where its failures get their own reasons.
struct TNAuthListCriticalExtensionPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [TNAuthList.oid]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        .meetsPolicy
    }
}
