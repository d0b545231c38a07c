import Crypto
import Foundation
import SIP
import Testing

@Suite("Digest authentication of inbound requests")
struct DigestChallengeTests {
    static let credentials = DigestCredentials(username: "Mufasa", password: "Circle of Life")

    /// RFC 7616 §3.9.1's example request, as a SIP client would send it.
    static func rfc7616(_ algorithm: String, response: String, realm: String = "http-auth@example.org") -> String {
        "Digest username=\"Mufasa\", realm=\"\(realm)\", uri=\"/dir/index.html\", algorithm=\(algorithm), "
            + "nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, "
            + "cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, response=\"\(response)\""
    }

    /// RFC 2617 §3.5's example: MD5, qop=auth.
    static let rfc2617 = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
        + "uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", "
        + "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""

    @Test(arguments: [
        (rfc2617, "testrealm@host.com", "Circle Of Life"),
        (rfc7616("SHA-256", response: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"), "http-auth@example.org", "Circle of Life"),
    ])
    func thePublishedExamplesCheckOutAndOnlyTheForeignNonceFails(header: String, realm: String, password: String) {
        let authenticator = DigestAuthenticator(realm: realm, credentials: DigestCredentials(username: "Mufasa", password: password))
        let verdict = authenticator.verify(authorization: [header], method: "GET", requestURI: "/dir/index.html", now: 0)
        // The digest matched; the nonce is the RFC's, not one we issued.
        #expect(verdict == .failed("nonce was not issued by us"))
        let wrong = DigestAuthenticator(realm: realm, credentials: DigestCredentials(username: "Mufasa", password: password.lowercased()))
        #expect(wrong.verify(authorization: [header], method: "GET", requestURI: "/dir/index.html", now: 0) == .failed("wrong digest response"))
    }

    /// A client answering our challenge the way RFC 2617 says, computed here independently of the authenticator.
    static func answer(_ challenge: String, password: String, uri: String, algorithm: String = "MD5", user: String = "Mufasa") -> String {
        let nonce = challenge.split(separator: "nonce=\"")[1].split(separator: "\"")[0]
        func h(_ text: String) -> String {
            let data = Data(text.utf8)
            let digest: [UInt8] = algorithm == "MD5" ? Array(Insecure.MD5.hash(data: data)) : Array(SHA256.hash(data: data))
            return digest.map { String(format: "%02x", $0) }.joined()
        }
        let ha1 = h("\(user):trunk:\(password)")
        let ha2 = h("INVITE:\(uri)")
        let response = h("\(ha1):\(nonce):00000002:abc123:auth:\(ha2)")
        return "Digest username=\"\(user)\",realm=\"trunk\",nonce=\"\(nonce)\",uri=\"\(uri)\",response=\"\(response)\",algorithm=\(algorithm),qop=auth,nc=00000002,cnonce=\"abc123\""
    }

    @Test func ourChallengeAnsweredWithThePasswordIsAuthorizedUntilTheNonceExpires() throws {
        let authenticator = DigestAuthenticator(realm: "trunk", credentials: Self.credentials, nonceLifetime: .seconds(30))
        let challenges = authenticator.challenges(now: 1_000)
        #expect(challenges.count == 2)
        #expect(challenges[0].contains("algorithm=SHA-256") && challenges[0].contains("qop=\"auth\""))
        #expect(!challenges.joined().contains("Circle"))
        let uri = "sip:+15550001111@127.0.0.1:5060"
        for (challenge, algorithm) in zip(challenges, ["SHA-256", "MD5"]) {
            let header = Self.answer(challenge, password: "Circle of Life", uri: uri, algorithm: algorithm)
            #expect(authenticator.verify(authorization: [header], method: "INVITE", requestURI: uri, now: 1_010) == .authorized)
            #expect(authenticator.verify(authorization: [header], method: "INVITE", requestURI: uri, now: 1_031) == .stale)
            #expect(authenticator.verify(authorization: [header], method: "INVITE", requestURI: "sip:+15550001111@127.0.0.2:5060", now: 1_010)
                == .failed("digest uri does not match the Request-URI"))
        }
        // sipp writes the target without the user part: same host and port, accepted.
        let hostOnly = Self.answer(challenges[1], password: "Circle of Life", uri: "sip:127.0.0.1:5060")
        #expect(authenticator.verify(authorization: [hostOnly], method: "INVITE", requestURI: uri, now: 1_010) == .authorized)
        #expect(!"\(authenticator)".contains("Circle"), "the password never prints")
        let stale = authenticator.challenges(now: 1_031, stale: true)
        #expect(stale.allSatisfy { $0.hasSuffix("stale=true") })
    }

    @Test func missingWrongAndForeignCredentialsAreToldApart() {
        let authenticator = DigestAuthenticator(realm: "trunk", credentials: Self.credentials, algorithms: [.md5])
        let challenge = authenticator.challenges(now: 50)[0]
        let uri = "sip:1000@127.0.0.1"
        #expect(authenticator.verify(authorization: [], method: "INVITE", requestURI: uri, now: 50) == .missing)
        #expect(authenticator.verify(authorization: [Self.answer(challenge, password: "guess", uri: uri)], method: "INVITE", requestURI: uri, now: 50)
            == .failed("wrong digest response"))
        #expect(authenticator.verify(authorization: [Self.answer(challenge, password: "Circle of Life", uri: uri, user: "Scar")], method: "INVITE", requestURI: uri, now: 50)
            == .failed("unknown user Scar"))
        #expect(authenticator.verify(authorization: [Self.answer(challenge, password: "Circle of Life", uri: uri, algorithm: "SHA-256")], method: "INVITE", requestURI: uri, now: 50)
            == .failed("algorithm SHA-256 was not offered"))
        #expect(authenticator.verify(authorization: ["Basic TXVmYXNhOkNpcmNsZQ=="], method: "INVITE", requestURI: uri, now: 50)
            == .failed("no digest credentials for realm trunk"))
        // A nonce from another gateway (another secret) is not ours, even with the right password.
        let other = DigestAuthenticator(realm: "trunk", credentials: Self.credentials, algorithms: [.md5])
        let foreign = Self.answer(other.challenges(now: 50)[0], password: "Circle of Life", uri: uri)
        #expect(authenticator.verify(authorization: [foreign], method: "INVITE", requestURI: uri, now: 50) == .failed("nonce was not issued by us"))
    }
}

@Suite("Registration retry backoff")
struct RegistrationBackoffTests {
    @Test func delaysDoubleToTheCapAndResetAfterASuccess() {
        var backoff = RegistrationBackoff(initial: .seconds(1), maximum: .seconds(10))
        #expect((0..<6).map { _ in backoff.failed() } == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10)])
        backoff.succeeded()
        #expect(backoff.failed() == .seconds(1))
    }
}
