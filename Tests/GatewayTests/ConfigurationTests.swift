import Foundation
@testable import Gateway
import Identity
import Testing

@Suite("Configuration and dialplan")
struct ConfigurationTests {
    /// Writes a config + dialplan pair into a temp folder and loads it.
    func load(_ config: String, dialplan: String = "routes:\n  - name: demo\n    embedded: demo\n") throws -> GatewayConfiguration {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try config.write(to: folder.appendingPathComponent("trunkline.yaml"), atomically: true, encoding: .utf8)
        try dialplan.write(to: folder.appendingPathComponent("dialplan.yaml"), atomically: true, encoding: .utf8)
        return try GatewayConfiguration.load(path: folder.appendingPathComponent("trunkline.yaml").path)
    }

    let minimal = "trunks:\n  - name: local\n    allow: [127.0.0.0/8]\ndialplan: dialplan.yaml\n"

    func expectError(_ config: String, dialplan: String? = nil, line: Int, containing text: String) {
        do {
            _ = try dialplan.map { try load(config, dialplan: $0) } ?? load(config)
            Issue.record("expected a configuration error containing '\(text)'")
        } catch let error as ConfigError {
            #expect(error.line == line, "\(error)")
            #expect(error.message.contains(text), "\(error)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func theShippedConfigurationLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try GatewayConfiguration.load(path: root.appendingPathComponent("trunkline.yaml").path)
        #expect(config.sip.port == 5060)
        #expect(config.trunk(forSource: "127.0.0.1")?.name == "local")
        guard case .flow(let flow)? = config.dialplan.route(number: "1000", trunk: "local")?.action else {
            Issue.record("the demo number must run the demo flow")
            return
        }
        #expect(flow.says)
        #expect(config.dialplan.route(number: "script", trunk: "local")?.action == .embeddedDemo)
    }

    @Test func defaultsApply() throws {
        let config = try load(minimal)
        #expect(config.sip.listen == "127.0.0.1")
        #expect(config.media.rtpPorts == 20000...20999)
        #expect(config.accountSid == GatewayConfiguration.defaultAccountSid)
        #expect(config.trunks.first?.symmetricRTP == true)
    }

    @Test func aWrongKeyNamesItsLine() {
        expectError("sip:\n  port: 5070\n  lissen: 0.0.0.0\n" + minimal, line: 3, containing: "unknown key 'lissen'")
    }

    @Test func aBadCIDRNamesItsLine() {
        expectError("trunks:\n  - name: t\n    allow:\n      - 10.0.0.0/8\n      - 300.1.2.0/24\ndialplan: dialplan.yaml\n",
                    line: 5, containing: "'300.1.2.0/24' is not a CIDR")
    }

    @Test func aRouteFallbackCanTransferToAHuman() throws {
        let config = try load(minimal, dialplan: "routes:\n  - name: bot\n    embedded: demo\n    fallback: { transfer_to: 'sip:desk@example.test' }\n")
        #expect(config.dialplan.routes[0].fallbackTransferTo == "sip:desk@example.test")
        expectError(minimal, dialplan: "routes:\n  - name: x\n    embedded: demo\n    fallback: { transfer_to: 'sip:a@b?X-A=1' }\n",
                    line: 4, containing: "transfer target has characters")
        expectError(minimal, dialplan: "routes:\n  - name: x\n    embedded: demo\n    fallback: { transfer: 'sip:a@b' }\n",
                    line: 4, containing: "unknown key 'transfer'")
    }

    @Test func anUnknownRouteActionNamesItsLine() {
        expectError(minimal, dialplan: "routes:\n  - name: x\n    forward: sip:bob@example.com\n", line: 3, containing: "unknown key 'forward'")
        expectError(minimal, dialplan: "routes:\n  - name: x\n    match: { exact: '1' }\n", line: 2, containing: "needs exactly one action")
        expectError(minimal, dialplan: "routes:\n  - name: x\n    embedded: robot\n", line: 3, containing: "unknown embedded agent")
        expectError(minimal, dialplan: "routes:\n  - name: x\n    agent: { url: 'http://bot/ws' }\n", line: 3, containing: "not ws")
    }

    @Test func otherBadValues() {
        expectError("sip: { port: 70000 }\n" + minimal, line: 1, containing: "outside 0...65535")
        expectError("media: { rtp_ports: 20000 }\n" + minimal, line: 1, containing: "expected 'LOW-HIGH'")
        expectError("account_sid: AC123\n" + minimal, line: 1, containing: "32 hex digits")
        expectError("trunks: []\ndialplan: dialplan.yaml\n", line: 1, containing: "at least one trunk")
        expectError("trunks:\n  - name: t\n    allow: [1.2.3.4]\n", line: 1, containing: "missing required key 'dialplan'")
        expectError("trunks: [\n", line: 2, containing: "not valid YAML")
        expectError(minimal, dialplan: "routes:\n  - name: x\n    trunks: [nope]\n    embedded: demo\n", line: 3, containing: "unknown trunk 'nope'")
        expectError(minimal, dialplan: "routes:\n  - name: x\n    match: { regex: '([' }\n    embedded: demo\n", line: 3, containing: "invalid regular expression")
    }

    @Test func routesMatchInOrderByExactPrefixAndRegex() throws {
        let dialplan = """
            routes:
              - name: exact
                match: { exact: "+15550001" }
                reject: 486
              - name: regex
                match: { regex: "^9\\\\d{3}$" }
                embedded: demo
              - name: prefix
                match: { prefix: "+1" }
                agent: { url: "ws://127.0.0.1:9/ws" }
              - name: other-trunk-only
                trunks: [second]
                embedded: demo
            """
        let config = try load(minimal.replacingOccurrences(of: "dialplan:", with: "  - name: second\n    allow: [10.0.0.0/8]\ndialplan:"), dialplan: dialplan)
        #expect(config.dialplan.route(number: "+15550001", trunk: "local")?.name == "exact")
        #expect(config.dialplan.route(number: "9123", trunk: "local")?.name == "regex")
        #expect(config.dialplan.route(number: "91234", trunk: "local") == nil)
        #expect(config.dialplan.route(number: "+15550002", trunk: "local")?.name == "prefix")
        #expect(config.dialplan.route(number: "44", trunk: "local") == nil)
        #expect(config.dialplan.route(number: "44", trunk: "second")?.name == "other-trunk-only")
    }

    @Test func identityConditionsAndTrunkTrustAreRead() throws {
        let dialplan = """
            routes:
              - name: screen
                identity: [invalid, absent, C]
                reject: identity
              - name: ok
                embedded: demo
            """
        let config = try load(minimal.replacingOccurrences(of: "allow: [127.0.0.0/8]", with: "allow: [127.0.0.0/8]\n    trust_verstat: true\n    prefer_verstat: true"), dialplan: dialplan)
        #expect(config.trunks[0].trustVerstat && config.trunks[0].preferVerstat && config.trunks[0].verifyIdentity)
        #expect(config.identity == nil)
        #expect(config.dialplan.routes[0].action == .reject(status: nil))
        let c = CarrierVerstat.parse("TN-Validation-Passed-C")!.verdict
        let a = CarrierVerstat.parse("TN-Validation-Passed-A")!.verdict
        let failed = CarrierVerstat.parse("TN-Validation-Failed")!.verdict
        #expect(config.dialplan.route(number: "1", trunk: "local", identity: c)?.name == "screen")
        #expect(config.dialplan.route(number: "1", trunk: "local", identity: failed)?.name == "screen")
        #expect(config.dialplan.route(number: "1", trunk: "local")?.name == "screen")  // absent
        #expect(config.dialplan.route(number: "1", trunk: "local", identity: a)?.name == "ok")
    }

    @Test func identityConfigurationErrorsNameTheirLine() {
        expectError(minimal, dialplan: "routes:\n  - name: x\n    identity: [maybe]\n    embedded: demo\n", line: 3, containing: "unknown identity condition 'maybe'")
        expectError("identity:\n  trust_anchors: []\n" + minimal, line: 2, containing: "at least one STI-CA trust anchor")
        expectError("identity:\n  trust_anchors: [/nonexistent/sti-ca.pem]\n" + minimal, line: 2, containing: "sti-ca.pem")
    }

    /// A self-signed P-256 certificate (no key kept), standing in for an STI-CA root or a lab TLS CA.
    static let testCertificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIBpTCCAUugAwIBAgIUUpfDhqTrosR8K9/8mdFez+COu50wCgYIKoZIzj0EAwIw
        JzElMCMGA1UEAwwcVHJ1bmtsaW5lIENvbmZpZyBUZXN0IFRMUyBDQTAgFw0yNjEx
        MjUxMTE3MzNaGA8yMTI2MTEwMTExMTczM1owJzElMCMGA1UEAwwcVHJ1bmtsaW5l
        IENvbmZpZyBUZXN0IFRMUyBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIBd
        4Q/MITNQpCvpZRQG8top37kuJgac8AHQNv0LWEhyktaa0+npob2vIzxfzmhEodG1
        mi087bKMgt8aqncdPZijUzBRMB0GA1UdDgQWBBSrJkksjXnzPA2qxXCEdYEVgk+z
        GDAfBgNVHSMEGDAWgBSrJkksjXnzPA2qxXCEdYEVgk+zGDAPBgNVHRMBAf8EBTAD
        AQH/MAoGCCqGSM49BAMCA0gAMEUCIAVib31unK7DUyuD7RpIOMFc0OlQLdfHOa/X
        WS1Cv0gPAiEAgoRmRDBXcdrFa8I5/yKM3Ht+Hul6yssFq3rjZpj4z5o=
        -----END CERTIFICATE-----
        """

    @Test func identityTLSRootsAreForTheX5UConnectionOnly() throws {
        let folder = NSTemporaryDirectory() + "trunkline-tls-roots-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let anchor = folder + "/sti-ca.pem", tlsCA = folder + "/tls-ca.pem"
        try Self.testCertificatePEM.write(toFile: anchor, atomically: true, encoding: .utf8)
        try Self.testCertificatePEM.write(toFile: tlsCA, atomically: true, encoding: .utf8)

        let plain = try #require(try load("identity:\n  trust_anchors: [\(anchor)]\n" + minimal).identity)
        #expect(plain.fetch.additionalTLSRootsPEM.isEmpty)

        let config = try load("identity:\n  trust_anchors: [\(anchor)]\n  tls_roots: [\(tlsCA)]\n  allow_private_x5u: true\n" + minimal)
        let identity = try #require(config.identity)
        #expect(identity.fetch.additionalTLSRootsPEM == [Self.testCertificatePEM])
        #expect(identity.trustAnchors.count == 1)  // the TLS root is not an STI-CA anchor
        #expect(identity.fetch.allowPrivateTargets)

        expectError("identity:\n  trust_anchors: [\(anchor)]\n  tls_roots: [/nonexistent/tls-ca.pem]\n" + minimal, line: 3, containing: "tls-ca.pem")
        let notPEM = folder + "/not.pem"
        try "hello".write(toFile: notPEM, atomically: true, encoding: .utf8)
        expectError("identity:\n  trust_anchors: [\(anchor)]\n  tls_roots: [\(notPEM)]\n" + minimal, line: 3, containing: "tls_roots")
    }

    @Test func cidrMatching() throws {
        let v4 = try #require(CIDR("54.172.60.0/30"))
        #expect(v4.contains("54.172.60.3"))
        #expect(!v4.contains("54.172.60.4"))
        #expect(v4.contains("::ffff:54.172.60.1"))
        #expect(!v4.contains("not an address"))
        let v6 = try #require(CIDR("2001:db8::/32"))
        #expect(v6.contains("2001:db8:1::5"))
        #expect(!v6.contains("2001:db9::1"))
        #expect(CIDR("10.0.0.1")?.prefixLength == 32)
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("10.0.0.0/") == nil)
        #expect(CIDR("10.1.2.3/8")?.description == "10.0.0.0/8")
    }
}
