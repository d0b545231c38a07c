import Foundation
@testable import Gateway
import SIP
import Testing

@Suite("Trunk profiles and outbound settings")
struct TrunkOutboundTests {
    let configuration = ConfigurationTests()

    func trunk(_ body: String, profile: String = "generic") -> String {
        "trunks:\n  - name: carrier\n    profile: \(profile)\n    allow: [127.0.0.0/8]\n    outbound:\n\(body)dialplan: dialplan.yaml\n"
    }

    @Test func aTelnyxTrunkBelievesVerstatAndPresentsCallerIDInPAI() throws {
        let config = try configuration.load(trunk("      addresses: [\"sip:198.51.100.7:5080;transport=tcp\", 198.51.100.8]\n      username: u\n      password: p\n", profile: "telnyx"))
        let trunk = try #require(config.trunks.first)
        #expect(trunk.profile == .telnyx)
        #expect(trunk.trustVerstat)
        let outbound = try #require(trunk.outbound)
        #expect(outbound.callerIDHeader == .pAssertedIdentity)
        #expect(outbound.addresses.map(\.description) == ["198.51.100.7:5080;transport=tcp", "198.51.100.8"])
        #expect(outbound.credentials == DigestCredentials(username: "u", password: "p"))
        #expect(!"\(outbound.credentials!)".contains("p)"), "the password never prints")
        #expect(outbound.ringTimeoutSeconds == 30)
    }

    @Test func badOutboundSettingsNameTheirLine() {
        configuration.expectError(trunk("      addresses: [\"198.51.100.7:99999\"]\n"), line: 6, containing: "not a termination address")
        configuration.expectError(trunk("      addresses: [198.51.100.7]\n      username: u\n"), line: 7, containing: "needs a password")
        configuration.expectError(trunk("      addresses: [198.51.100.7]\n      caller_id_header: asserted\n"), line: 7, containing: "not one of from, pai, ppi")
        configuration.expectError(trunk("      addresses: []\n"), line: 6, containing: "at least one termination address")
        configuration.expectError(
            trunk("      addresses: [198.51.100.7]\n      sign: { key: k.pem, x5u: \"http://certs.example/c.pem\" }\n"),
            line: 7, containing: "https")
        configuration.expectError(trunk("      addresses: [198.51.100.7]\n", profile: "bandwidth"), line: 3, containing: "not one of twilio, telnyx, generic")
    }

    @Test(arguments: [
        ("10.0.0.1", "sip:+15557654321@10.0.0.1"),
        ("sip:10.0.0.1:5070;transport=tcp", "sip:+15557654321@10.0.0.1:5070;transport=tcp"),
        ("[2001:db8::1]:5060", "sip:+15557654321@[2001:db8::1]:5060"),
        ("carrier.example:5061;transport=tls", "sips:+15557654321@carrier.example:5061;transport=tls"),
    ])
    func terminationAddressesMakeRequestURIs(text: String, uri: String) throws {
        #expect(try #require(TerminationAddress(text)).requestURI(user: "+15557654321") == uri)
    }

    @Test(arguments: ["", "10.0.0.1;transport=sctp", "10.0.0.1:0", "bad host", "10.0.0.1>evil", "[::1"])
    func malformedTerminationAddressesAreRefused(text: String) {
        #expect(TerminationAddress(text) == nil)
    }

    @Test func onlyPlainNumbersAreDialable() {
        #expect(DialableNumber.isValid("+15557654321"))
        #expect(DialableNumber.isValid("911"))
        for hostile in ["", "+", "+1555;user=phone", "1555@evil", "+1555\r\nX: y", "sip:1555", String(repeating: "1", count: 33)] {
            #expect(!DialableNumber.isValid(hostile), "\(hostile)")
        }
    }

    @Test func healthOrderPutsDeadAddressesLast() {
        let health = TrunkHealth()
        let addresses = ["10.0.0.1", "10.0.0.2", "10.0.0.3"].compactMap(TerminationAddress.init)
        #expect(health.order(addresses) == addresses)
        #expect(health.record(addresses[0], alive: false))
        #expect(!health.record(addresses[0], alive: false), "no change, no log line")
        #expect(health.order(addresses).map(\.host) == ["10.0.0.2", "10.0.0.3", "10.0.0.1"])
        #expect(health.record(addresses[0], alive: true))
        #expect(health.order(addresses) == addresses)
        #expect(TrunkHealth.isAlive(status: 404))
        #expect(!TrunkHealth.isAlive(status: 503))
        #expect(!TrunkHealth.isAlive(status: 408))
    }
}
