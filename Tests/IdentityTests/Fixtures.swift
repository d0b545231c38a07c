import Crypto
import Foundation
import TrunklineTestSupport
import Logging
import X509
@testable import Identity

/// Counts fetches and serves documents from memory: drives the verifier core without a network.
final class MemoryFetcher: CertificateFetching, @unchecked Sendable {
    private let lock = NSLock()
    private var documents: [String: FetchedDocument]
    private var fetches = 0

    init(_ documents: [String: FetchedDocument]) { self.documents = documents }

    var count: Int { lock.withLock { fetches } }

    func fetch(_ url: X5UURL) async -> Result<FetchedDocument, IdentityReason> {
        lock.withLock {
            fetches += 1
            guard let document = documents[url.url] else { return .failure(.init(.x5uBadResponse, "HTTP 404")) }
            return .success(document)
        }
    }
}

/// Whole-second "now", a PKI valid around it, and a signer for the PKI's leaf.
struct Fixture {
    static let x5u = "https://certs.example.test/sp.pem"
    static let caller = "+1 (202) 555-0100"
    static let called = "sip:+12025550199@gateway.example;user=phone"

    let now: Date
    let pki: TestPKI
    let fetcher: MemoryFetcher
    let verifier: IdentityVerifier

    init(options: TestPKI.Options = .init(), anchors: [Certificate]? = nil, cacheControl: String? = nil) throws {
        now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        pki = try TestPKI(now: now, options: options)
        var document = try pki.chainDocument
        document.cacheControl = cacheControl
        fetcher = MemoryFetcher([Self.x5u: document])
        verifier = IdentityVerifier(
            configuration: IdentityConfiguration(trustAnchors: anchors ?? [pki.root]),
            fetcher: fetcher,
            logger: Logger(label: "test")
        )
    }

    func sign(
        orig: String = "12025550100", dest: [String] = ["12025550199"], attest: Attestation = .a,
        x5u: String = Fixture.x5u, key: P256.Signing.PrivateKey? = nil, iat: Date? = nil
    ) throws -> String {
        try PASSporTSigner(privateKey: key ?? pki.leafKey, x5u: x5u)
            .sign(orig: orig, dest: dest, attest: attest, origID: "123e4567-e89b-12d3-a456-426655440000", iat: iat ?? now)
            .identityHeader
    }

    /// Signs arbitrary header/payload JSON with the leaf key (for malformed-claims cases).
    func rawJWS(header: String, payload: String, info: String = Fixture.x5u) throws -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        let signature = try pki.leafKey.signature(for: Data(input.utf8)).rawRepresentation
        return input + "." + Base64URL.encode(signature) + ";info=<\(info)>;alg=ES256;ppt=shaken"
    }

    func verify(_ headers: [String], caller: String = Fixture.caller, called: String = Fixture.called, at: Date? = nil)
        async -> IdentityVerdict
    {
        await verifier.verify(identityHeaders: headers, caller: caller, called: called, now: at ?? now)
    }
}
