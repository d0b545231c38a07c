import Crypto
import Foundation
import TrunklineTestSupport
import Logging
import NIOCore
import Testing
@testable import Identity

/// The real AsyncHTTPClient fetcher against a real HTTPS server on 127.0.0.1.
@Suite(.serialized) struct HTTPFetcherTests {
    struct Setup {
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let pki: TestPKI
        let tls: TestTLS
        let server: HTTPSTestServer

        init() throws {
            pki = try TestPKI(now: now)
            tls = try TestTLS()
            server = try HTTPSTestServer(tls: tls)
            server.set("/sp.pem", .init(headers: [("Content-Type", "application/pem-certificate-chain"), ("Cache-Control", "max-age=600")], body: Array(try pki.chainPEM.utf8)))
        }

        func configuration(allowPrivate: Bool = true, allowedHosts: Set<String> = [], timeout: TimeAmount = .seconds(2)) throws -> IdentityConfiguration {
            var configuration = IdentityConfiguration(trustAnchors: [pki.root])
            configuration.fetch.allowPrivateTargets = allowPrivate
            configuration.fetch.allowedHosts = allowedHosts
            configuration.fetch.additionalTLSRootsPEM = [try tls.caPEM]
            configuration.fetch.connectTimeout = timeout
            configuration.fetch.readTimeout = timeout
            configuration.fetch.totalTimeout = timeout + timeout
            return configuration
        }

        func header(_ path: String = "/sp.pem", attest: Attestation = .a, port: Int? = nil) throws -> String {
            let url = port.map { "https://127.0.0.1:\($0)\(path)" } ?? server.url(path)
            return try PASSporTSigner(privateKey: pki.leafKey, x5u: url)
                .sign(orig: "+12025550100", dest: ["+12025550199"], attest: attest, iat: now).identityHeader
        }
    }

    static func verify(_ verifier: IdentityVerifier, _ header: String, now: Date) async -> IdentityVerdict {
        await verifier.verify(identityHeaders: [header], caller: "+12025550100", called: "12025550199", now: now)
    }

    @Test func fetchesOverHTTPSAndCaches() async throws {
        let setup = try Setup()
        let verifier = try IdentityVerifier(configuration: try setup.configuration(), logger: Logger(label: "test"))
        let first = await Self.verify(verifier, try setup.header(), now: setup.now)
        let second = await Self.verify(verifier, try setup.header(attest: .c), now: setup.now)
        await verifier.shutdown()
        await setup.server.stop()
        #expect(first.status == .valid, "\(first)")
        #expect(second.status == .valid && second.attestation == .c)
        #expect(first.warnings.contains { $0.contains("port") })
        #expect(setup.server.requests("/sp.pem") == 1)
    }

    @Test func ssrfGuardRefusesLoopbackUnlessAllowed() async throws {
        let setup = try Setup()
        let guarded = try IdentityVerifier(configuration: try setup.configuration(allowPrivate: false), logger: Logger(label: "test"))
        let refused = await Self.verify(guarded, try setup.header(), now: setup.now)
        await guarded.shutdown()
        let listed = try IdentityVerifier(
            configuration: try setup.configuration(allowPrivate: false, allowedHosts: ["127.0.0.1"]), logger: Logger(label: "test")
        )
        let allowed = await Self.verify(listed, try setup.header(), now: setup.now)
        await listed.shutdown()
        await setup.server.stop()
        #expect(refused.reason?.code == .x5uForbiddenTarget)
        #expect(refused.reason?.sipStatus == 436)
        #expect(allowed.status == .valid)
        #expect(setup.server.requests("/sp.pem") == 1)
    }

    @Test func redirectIsNotFollowed() async throws {
        let setup = try Setup()
        setup.server.set("/moved.pem", .init(status: .found, headers: [("Location", setup.server.url("/sp.pem"))], body: []))
        let verifier = try IdentityVerifier(configuration: try setup.configuration(), logger: Logger(label: "test"))
        let verdict = await Self.verify(verifier, try setup.header("/moved.pem"), now: setup.now)
        await verifier.shutdown()
        await setup.server.stop()
        #expect(verdict.reason?.code == .x5uBadResponse, "\(verdict)")
        #expect(setup.server.requests("/moved.pem") == 1)
        #expect(setup.server.requests("/sp.pem") == 0)
    }

    @Test func oversizedBodyIsRefused() async throws {
        let setup = try Setup()
        setup.server.set("/big.pem", .init(body: [UInt8](repeating: 0x41, count: 100_000)))
        let verifier = try IdentityVerifier(configuration: try setup.configuration(), logger: Logger(label: "test"))
        let verdict = await Self.verify(verifier, try setup.header("/big.pem"), now: setup.now)
        let missing = await Self.verify(verifier, try setup.header("/none.pem"), now: setup.now)
        await verifier.shutdown()
        await setup.server.stop()
        #expect(verdict.reason?.code == .x5uTooLarge, "\(verdict)")
        #expect(missing.reason?.code == .x5uBadResponse, "\(missing)")
    }

    @Test func unreachableX5UTimeoutIsHonoured() async throws {
        let setup = try Setup()
        let silent = try SilentServer()
        let verifier = try IdentityVerifier(configuration: try setup.configuration(timeout: .milliseconds(500)), logger: Logger(label: "test"))
        let clock = ContinuousClock()
        let start = clock.now
        let verdict = await Self.verify(verifier, try setup.header(port: silent.port), now: setup.now)
        let elapsed = clock.now - start
        await verifier.shutdown()
        await silent.stop()
        await setup.server.stop()
        #expect(verdict.reason?.code == .x5uTimeout, "\(verdict)")
        #expect(verdict.reason?.sipStatus == 436)
        #expect(elapsed >= .milliseconds(400))
        #expect(elapsed < .seconds(3), "took \(elapsed)")
    }

    @Test func closedPortIsUnreachable() async throws {
        let setup = try Setup()
        let silent = try SilentServer()
        let port = silent.port
        await silent.stop()
        let verifier = try IdentityVerifier(configuration: try setup.configuration(), logger: Logger(label: "test"))
        let verdict = await Self.verify(verifier, try setup.header(port: port), now: setup.now)
        await verifier.shutdown()
        await setup.server.stop()
        #expect(verdict.reason?.code == .x5uUnreachable, "\(verdict)")
    }
}

/// Cross-checks with Debian's secsipidx, both ways.
@Suite(.serialized) struct SecsipidxInteropTests {
    @Test func secsipidxSignedHeadersVerify() async throws {
        let setup = try HTTPFetcherTests.Setup()
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keyFile = try directory.write("sp.key", setup.pki.leafKey.pemRepresentation)
        let url = setup.server.url("/sp.pem")
        let verifier = try IdentityVerifier(configuration: try setup.configuration(), logger: Logger(label: "test"))
        let iat = Int(setup.now.timeIntervalSince1970)
        var verdicts: [Attestation: IdentityVerdict] = [:]
        var tampered: IdentityVerdict?
        for attest in Attestation.allCases {
            let out = try Secsipidx.check([
                "-sign-full", "-orig-tn", "12025550100", "-dest-tn", "12025550199", "-attest", attest.rawValue,
                "-x5u", url, "-k", keyFile, "-iat", String(iat), "-orig-id", "123e4567-e89b-12d3-a456-42665544000\(attest == .a ? 0 : 1)",
            ])
            #expect(out.status == 0, "secsipidx -sign-full: \(out.stderr)")
            let header = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            verdicts[attest] = await verifier.verify(
                identityHeaders: [header], caller: "sip:+12025550100@carrier.example", called: "+1 202 555 0199",
                now: Date()  // secsipidx -sign-full ignores -iat and stamps the current time
            )
            if attest == .c {
                tampered = await verifier.verify(
                    identityHeaders: [header], caller: "+12025550101", called: "12025550199", now: Date()
                )
            }
        }
        await verifier.shutdown()
        await setup.server.stop()
        for attest in Attestation.allCases {
            #expect(verdicts[attest]?.status == .valid, "\(attest): \(String(describing: verdicts[attest]))")
            #expect(verdicts[attest]?.attestation == attest)
        }
        #expect(tampered?.reason?.code == .origMismatch)
        #expect(setup.server.requests("/sp.pem") == 1)
    }

    @Test func ourHeadersVerifyWithSecsipidx() throws {
        let pki = try TestPKI()
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let leafFile = try directory.write("sp.pem", try pki.leafPEM)
        let rootFile = try directory.write("root.pem", try pki.rootPEM)
        let interFile = try directory.write("inter.pem", try pki.intermediatePEM)
        let signer = PASSporTSigner(privateKey: pki.leafKey, x5u: "https://certs.example.org/sp.pem")
        for attest in Attestation.allCases {
            let signed = try signer.sign(orig: "+12025550100", dest: ["+12025550199"], attest: attest, iat: Date())
            let file = try directory.write("identity-\(attest.rawValue).txt", signed.identityHeader)
            let plain = try Secsipidx.check(["-check", "-fidentity", file, "-fpubkey", leafFile, "-expire", "60"])
            #expect(plain.status == 0, "secsipidx -check \(attest): \(plain.stdout) \(plain.stderr)")
            let chained = try Secsipidx.check([
                "-check", "-fidentity", file, "-fpubkey", leafFile, "-expire", "60",
                "-cert-verify", "13", "-ca-file", rootFile, "-ca-inter", interFile,
            ])
            #expect(chained.status == 0, "secsipidx -check with chain \(attest): \(chained.stdout) \(chained.stderr)")
        }
        // Negative control: another key's signature must fail in secsipidx too (-251 ECDSA verification failed).
        let forged = try PASSporTSigner(privateKey: P256.Signing.PrivateKey(), x5u: "https://certs.example.org/sp.pem")
            .sign(orig: "12025550100", dest: ["12025550199"], attest: .a, iat: Date())
        let forgedFile = try directory.write("forged.txt", forged.identityHeader)
        let rejected = try Secsipidx.check(["-check", "-fidentity", forgedFile, "-fpubkey", leafFile, "-expire", "60"])
        #expect(rejected.status != 0)
        // And a stale one (-232 expired token).
        let stale = try signer.sign(orig: "12025550100", dest: ["12025550199"], attest: .a, iat: Date().addingTimeInterval(-120))
        let staleFile = try directory.write("stale.txt", stale.identityHeader)
        #expect(try Secsipidx.check(["-check", "-fidentity", staleFile, "-fpubkey", leafFile, "-expire", "60"]).status != 0)
    }
}
