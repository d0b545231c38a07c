import Foundation
@testable import Gateway
import SIP
import Testing

@Suite("Trunk security settings")
struct TrunkSecurityConfigurationTests {
    let configuration = ConfigurationTests()

    func trunk(_ body: String, sip: String = "") -> String {
        sip + "trunks:\n  - name: carrier\n    allow: [127.0.0.0/8]\n\(body)dialplan: dialplan.yaml\n"
    }

    @Test func inboundAuthRegistrationLimitsAndTimeoutsAreRead() throws {
        setenv("TRUNKLINE_TEST_REGISTER_PASSWORD", "from-env", 1)
        let config = try configuration.load(trunk("""
                inbound_auth: { username: carrier, password: in-pw, algorithms: [MD5] }
                register: { registrar: "sip:10.9.8.7:5080;transport=tcp", username: gw, password_env: TRUNKLINE_TEST_REGISTER_PASSWORD, expires_s: 120 }
                outbound: { addresses: [198.51.100.7], health_check_timeout_ms: 1500, invite_timeout_ms: 2500 }

            """, sip: "sip:\n  limits: { invites_per_second: 20, auth_failures: 3, failure_window_s: 30, ban_s: 120, on_ban: drop }\n"))
        let trunk = try #require(config.trunks.first)
        let auth = try #require(trunk.inboundAuth)
        #expect(auth.realm == "carrier")
        #expect(auth.algorithms == [.md5])
        #expect(auth.credentials == DigestCredentials(username: "carrier", password: "in-pw"))
        let registration = try #require(trunk.registration)
        #expect(registration.registrar.description == "10.9.8.7:5080;transport=tcp")
        #expect(registration.credentials.password == "from-env")
        #expect(registration.expiresSeconds == 120)
        #expect(trunk.outbound?.healthCheckTimeout == .milliseconds(1500))
        #expect(trunk.outbound?.inviteTimeout == .milliseconds(2500))
        #expect(config.sip.limits == SourceGuard.Policy(
            invitesPerSecond: 20, maximumFailures: 3, failureWindow: .seconds(30), banDuration: .seconds(120), banResponse: .drop))
        // Calls from the registrar belong to the trunk even though its allow-list does not name it.
        #expect(config.trunk(forSource: "10.9.8.7")?.name == "carrier")
        #expect(config.trunk(forSource: "10.9.8.8") == nil)
    }

    @Test func theDefaultsNeedNoTLSAndBanAfterFiveFailures() throws {
        let config = try configuration.load(trunk(""))
        #expect(config.sip.tls == nil)
        #expect(config.sip.limits == SourceGuard.Policy())
        #expect(config.sip.limits.maximumFailures == 5 && config.sip.limits.invitesPerSecond == 0)
        #expect(config.trunks[0].inboundAuth == nil && config.trunks[0].registration == nil)
    }

    @Test func badSecuritySettingsNameTheirLine() {
        configuration.expectError(trunk("    inbound_auth: { username: carrier }\n"), line: 4, containing: "exactly one of password or password_env")
        configuration.expectError(
            trunk("    inbound_auth: { username: c, password: p, algorithms: [SHA-512] }\n"), line: 4, containing: "not one of SHA-256, MD5")
        configuration.expectError(
            trunk("    register: { registrar: 10.0.0.1, username: u, password_env: TRUNKLINE_TEST_UNSET_VARIABLE }\n"),
            line: 4, containing: "TRUNKLINE_TEST_UNSET_VARIABLE is not set")
        configuration.expectError(trunk("    register: { registrar: \"bad host\", username: u, password: p }\n"), line: 4, containing: "not a registrar address")
        configuration.expectError(trunk("", sip: "sip:\n  limits: { on_ban: tarpit }\n"), line: 2, containing: "on_ban must be reject or drop")
        configuration.expectError(trunk("", sip: "sip:\n  tls: { certificate_dir: /nonexistent-certs }\n"), line: 2, containing: "agent.pem not found")
        configuration.expectError(
            trunk("    outbound: { addresses: [\"sips:carrier.example\"] }\n"), line: 2, containing: "uses transport=tls but sip.tls is not configured")
    }
}
