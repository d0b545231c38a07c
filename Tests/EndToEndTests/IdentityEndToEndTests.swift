import Crypto
import Foundation
import Identity
import Testing
import TrunklineTestSupport

/// STIR/SHAKEN end to end: sipp sends an INVITE carrying an Identity header the test signed with a throw-away
/// STI-CA; the gateway fetches the x5u certificate over real HTTPS on loopback (trusting the test TLS CA through
/// `identity.tls_roots`), verifies, routes on the verdict and reports it to the agent and the call record.
@Suite("End to end: caller identity (STIR/SHAKEN)", .serialized)
struct IdentityEndToEndTests {
    /// The number sipp's scenarios put in From, and the number they call.
    static let caller = "+15551230001"
    static let called = "+15550001000"

    /// The STI-CA, the TLS CA and the loopback HTTPS server serving the SHAKEN chain at `/sp.pem`.
    struct Fixture {
        let pki: TestPKI
        let tls: TestTLS
        let server: HTTPSTestServer
        let directory: TemporaryDirectory
        let identityConfig: String

        init() throws {
            pki = try TestPKI()
            tls = try TestTLS()
            server = try HTTPSTestServer(tls: tls)
            directory = try TemporaryDirectory()
            server.set("/sp.pem", .init(body: Array(try pki.chainPEM.utf8)))
            let anchor = try directory.write("sti-ca.pem", try pki.rootPEM)
            let tlsCA = try directory.write("tls-ca.pem", try tls.caPEM)
            // The TLS CA is trusted for the x5u connection only; the STI-CA root is the only anchor.
            identityConfig = "identity:\n  trust_anchors: [\(anchor)]\n  tls_roots: [\(tlsCA)]\n  allow_private_x5u: true"
        }

        func sign(with key: P256.Signing.PrivateKey? = nil, path: String = "/sp.pem", dest: String = IdentityEndToEndTests.called) throws -> String {
            try PASSporTSigner(privateKey: key ?? pki.leafKey, x5u: server.url(path))
                .sign(orig: IdentityEndToEndTests.caller, dest: [dest], attest: .a, iat: Date()).identityHeader
        }

        /// A gateway whose dialplan refuses failed verifications and sends everything else to `agentURL`.
        func gateway(agentURL: String) async throws -> GatewayProcess {
            try await GatewayProcess(
                rtpPorts: try FreePort.udpRange(count: 20), trunks: CallFlowTests.localTrunk,
                routes: """
                      - name: screen-failed
                        identity: [invalid]
                        reject: identity
                      - name: bot
                        agent: { url: "\(agentURL)" }
                    """,
                extraConfig: identityConfig)
        }

        func cleanup() async {
            await server.stop()
            directory.cleanup()
        }
    }

    @Test func aSignedCallReachesTheAgentWithTheValidVerdict() async throws {
        let fixture = try Fixture()
        let agent = try await RecordingAgentServer.start()
        let gateway = try await fixture.gateway(agentURL: agent.url(path: "/ws"))

        let identity = try fixture.sign()
        async let call = Sipp.run(
            scenario: "identity_hold.xml", gatewayPort: gateway.sipPort, service: Self.called, holdMilliseconds: 1000,
            keys: ["identity": identity])
        let connection = try await agent.waitForConnection(timeout: .seconds(15))
        let start = try await connection.waitForEvent(named: "start")
        let parameters = try #require(start["start"]?["customParameters"])
        #expect(parameters["stir_status"]?.string == "valid")
        #expect(parameters["stir_attestation"]?.string == "A")
        #expect(parameters["stir_verstat"]?.string == "TN-Validation-Passed-A")
        #expect(parameters["stir_source"]?.string == "local")
        #expect(parameters["stir_orig_tn"]?.string?.hasSuffix("15551230001") == true)
        let result = try await call
        #expect(result.exitCode == 0, "\(result.output)")

        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["sip_status"] as? Int == 200)
        #expect(record["route"] as? String == "bot")
        #expect(record["stir_status"] as? String == "valid")
        #expect(record["stir_attestation"] as? String == "A")
        #expect(record["stir_source"] as? String == "local")
        #expect(fixture.server.requests("/sp.pem") == 1)  // fetched over HTTPS once
        try await agent.shutdown()
        await fixture.cleanup()
    }

    @Test func failedVerificationsAreRefusedWithTheMappedCode() async throws {
        let fixture = try Fixture()
        // A chain from another STI-CA, served by the same (trusted) HTTPS host: the TLS root does not make it an anchor.
        let stranger = try TestPKI()
        fixture.server.set("/other.pem", .init(body: Array(try stranger.chainPEM.utf8)))
        let gateway = try await fixture.gateway(agentURL: "ws://127.0.0.1:9/unused")

        let untrusted = try CallFlowTests.rejectionScenario(
            status: 437, media: "m=audio [auto_media_port] RTP/AVP 0",
            headers: ["Identity: " + (try fixture.sign(with: stranger.leafKey, path: "/other.pem"))])
        let refusedUntrusted = try await Sipp.run(scenario: untrusted, gatewayPort: gateway.sipPort, service: Self.called)
        #expect(refusedUntrusted.exitCode == 0, "an untrusted chain must be refused with 437: \(refusedUntrusted.output)")

        let misdirected = try CallFlowTests.rejectionScenario(
            status: 438, media: "m=audio [auto_media_port] RTP/AVP 0",
            headers: ["Identity: " + (try fixture.sign(dest: "+15550009999"))])
        let refusedMisdirected = try await Sipp.run(scenario: misdirected, gatewayPort: gateway.sipPort, service: Self.called)
        #expect(refusedMisdirected.exitCode == 0, "a wrong dest must be refused with 438: \(refusedMisdirected.output)")

        let records = try await gateway.waitForCallRecords(2)
        #expect(records[0]["sip_status"] as? Int == 437)
        #expect(records[0]["route"] as? String == "screen-failed")
        #expect(records[0]["stir_status"] as? String == "invalid")
        #expect((records[0]["stir_reason"] as? String)?.hasPrefix("437 chain_untrusted") == true, "\(records[0])")
        #expect(records[0]["stir_reason_code"] as? Int == 437)
        #expect(records[1]["sip_status"] as? Int == 438)
        #expect(records[1]["route"] as? String == "screen-failed")
        #expect(records[1]["stir_status"] as? String == "invalid")
        #expect((records[1]["stir_reason"] as? String)?.hasPrefix("438 dest_mismatch") == true, "\(records[1])")
        #expect(records[1]["stir_reason_code"] as? Int == 438)
        #expect(fixture.server.requests("/other.pem") == 1)  // the stranger's chain was fetched, then not trusted
        await fixture.cleanup()
    }
}
