import Crypto
import Foundation
import TrunklineTestSupport
import Testing
@testable import Identity

@Suite struct VerifierCoreTests {
    @Test(arguments: Attestation.allCases)
    func ourSignatureVerifies(attest: Attestation) async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([try fixture.sign(attest: attest)])
        #expect(verdict.status == .valid, "\(verdict)")
        #expect(verdict.attestation == attest)
        #expect(verdict.reason == nil)
        #expect(verdict.source == .local)
        #expect(verdict.origTN == "12025550100")
        #expect(verdict.destTN == ["12025550199"])
        #expect(verdict.spc == "1234")
        #expect(!verdict.warnings.contains { $0.contains("certificate-policies") })
        let parameters = Dictionary(uniqueKeysWithValues: verdict.parameters)
        #expect(parameters["stir_status"] == "valid")
        #expect(parameters["stir_attestation"] == attest.rawValue)
        #expect(parameters["stir_verstat"] == "TN-Validation-Passed-\(attest.rawValue)")
        #expect(parameters["stir_reason_code"] == nil)
    }

    @Test func noIdentityHeaderIsAbsent428() async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([])
        #expect(verdict.status == .absent)
        #expect(verdict.reason?.code == .noIdentity)
        #expect(verdict.reason?.sipStatus == 428)
        #expect(Dictionary(uniqueKeysWithValues: verdict.parameters)["stir_reason_code"] == "428")
        #expect(fixture.fetcher.count == 0)
    }

    @Test func onlyNonShakenHeadersIsAbsent() async throws {
        let fixture = try Fixture()
        let div = try fixture.sign().replacingOccurrences(of: "ppt=shaken", with: "ppt=div")
        let verdict = await fixture.verify([div])
        #expect(verdict.status == .absent)
        #expect(verdict.warnings.contains { $0.contains("ppt=div") })
    }

    @Test func firstValidOfSeveralHeadersWins() async throws {
        let fixture = try Fixture()
        let bad = try fixture.sign(key: P256.Signing.PrivateKey())
        let div = try fixture.sign(attest: .c).replacingOccurrences(of: "ppt=shaken", with: "ppt=div")
        let verdict = await fixture.verify([div, bad, try fixture.sign(attest: .b)])
        #expect(verdict.status == .valid)
        #expect(verdict.attestation == .b)
        let failing = await fixture.verify([bad, "garbage!"])
        #expect(failing.reason?.code == .badSignature)
    }

    /// Each failure gets its own reason code and SIP status.
    @Test func staleIAT() async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([try fixture.sign()], at: fixture.now.addingTimeInterval(61))
        #expect(verdict.status == .invalid)
        #expect(verdict.reason?.code == .staleIAT)
        #expect(verdict.reason?.sipStatus == 403)
        #expect(fixture.fetcher.count == 0)
        let justInTime = await fixture.verify([try fixture.sign()], at: fixture.now.addingTimeInterval(60))
        #expect(justInTime.status == .valid)
    }

    @Test func futureIAT() async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([try fixture.sign(iat: fixture.now.addingTimeInterval(30))])
        #expect(verdict.reason?.code == .futureIAT)
        #expect(verdict.reason?.sipStatus == 403)
        let skewed = await fixture.verify([try fixture.sign(iat: fixture.now.addingTimeInterval(4))])
        #expect(skewed.status == .valid)
    }

    @Test func wrongOrig() async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([try fixture.sign()], caller: "sip:+12025550111@example.com")
        #expect(verdict.reason?.code == .origMismatch)
        #expect(verdict.reason?.sipStatus == 438)
        #expect(verdict.origTN == "12025550100")
        let named = await fixture.verify([try fixture.sign()], caller: "sip:alice@example.com")
        #expect(named.reason?.code == .origMismatch)
    }

    @Test func wrongDest() async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([try fixture.sign()], called: "+12025550198")
        #expect(verdict.reason?.code == .destMismatch)
        #expect(verdict.reason?.sipStatus == 438)
        let multi = await fixture.verify([try fixture.sign(dest: ["12025550000", "12025550198"])], called: "tel:+1-202-555-0198")
        #expect(multi.status == .valid)
    }

    @Test func anotherKeysSignature() async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([try fixture.sign(key: P256.Signing.PrivateKey())])
        #expect(verdict.reason?.code == .badSignature)
        #expect(verdict.reason?.sipStatus == 438)
    }

    @Test func tamperedPayload() async throws {
        let fixture = try Fixture()
        let header = try fixture.sign(attest: .a)
        let parts = header.split(separator: ";", maxSplits: 1)
        let jws = parts[0].split(separator: ".")
        var payload = String(decoding: Base64URL.decode(jws[1])!, as: UTF8.self)
        payload = payload.replacingOccurrences(of: "\"attest\":\"A\"", with: "\"attest\":\"B\"")
        let forged = "\(jws[0]).\(Base64URL.encode(Array(payload.utf8))).\(jws[2]);\(parts[1])"
        let verdict = await fixture.verify([forged])
        #expect(verdict.reason?.code == .badSignature)
    }

    @Test func x5uOverHTTP() async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([try fixture.sign(x5u: "http://certs.example.test/sp.pem")])
        #expect(verdict.reason?.code == .x5uNotHTTPS)
        #expect(verdict.reason?.sipStatus == 436)
        #expect(fixture.fetcher.count == 0)
    }

    @Test(arguments: ["https://certs.example.test/sp.pem?v=1", "https://u:p@certs.example.test/sp.pem", "https://certs.example.test/sp.pem#a"])
    func x5uWithQueryOrCredentials(x5u: String) async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([try fixture.sign(x5u: x5u)])
        #expect(verdict.reason?.code == .x5uForbiddenComponent)
        #expect(fixture.fetcher.count == 0)
    }

    @Test func infoDiffersFromX5U() async throws {
        let fixture = try Fixture()
        let header = try fixture.sign().replacingOccurrences(of: "info=<\(Fixture.x5u)>", with: "info=<https://other.example/sp.pem>")
        let verdict = await fixture.verify([header])
        #expect(verdict.reason?.code == .x5uMismatch)
    }

    @Test func missingInfo() async throws {
        let fixture = try Fixture()
        let header = try fixture.sign().replacingOccurrences(of: ";info=<\(Fixture.x5u)>", with: "")
        #expect(await fixture.verify([header]).reason?.code == .infoMissing)
    }

    @Test func unsupportedAlgParameter() async throws {
        let fixture = try Fixture()
        let header = try fixture.sign().replacingOccurrences(of: "alg=ES256", with: "alg=RS256")
        let verdict = await fixture.verify([header])
        #expect(verdict.reason?.code == .unsupportedAlgorithm)
        #expect(verdict.reason?.sipStatus == 437)
    }

    @Test func chainToUnknownRoot() async throws {
        let other = try TestPKI()
        let fixture = try Fixture(anchors: [other.root])
        let verdict = await fixture.verify([try fixture.sign()])
        #expect(verdict.reason?.code == .chainUntrusted)
        #expect(verdict.reason?.sipStatus == 437)
    }

    @Test func missingTNAuthList() async throws {
        var options = TestPKI.Options()
        options.tnAuthList = false
        let fixture = try Fixture(options: options)
        let verdict = await fixture.verify([try fixture.sign()])
        #expect(verdict.reason?.code == .tnAuthListMissing)
        #expect(verdict.reason?.sipStatus == 437)
    }

    @Test func expiredCertificate() async throws {
        var options = TestPKI.Options()
        options.leafNotBefore = -30 * 86_400
        options.leafNotAfter = -3_600
        let fixture = try Fixture(options: options)
        let verdict = await fixture.verify([try fixture.sign()])
        #expect(verdict.reason?.code == .certificateExpired)
        #expect(verdict.reason?.sipStatus == 437)
    }

    @Test func missingPolicyOIDIsOnlyAWarning() async throws {
        var options = TestPKI.Options()
        options.policyOID = false
        let fixture = try Fixture(options: options)
        let verdict = await fixture.verify([try fixture.sign()])
        #expect(verdict.status == .valid)
        #expect(verdict.warnings.contains { $0.contains("certificate-policies") })
    }

    @Test func malformedJWSAndClaims() async throws {
        let fixture = try Fixture()
        let header = #"{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"\#(Fixture.x5u)"}"#
        let iat = Int(fixture.now.timeIntervalSince1970)
        let noOrigid = #"{"attest":"A","dest":{"tn":["12025550199"]},"iat":\#(iat),"orig":{"tn":"12025550100"}}"#
        #expect(await fixture.verify([try fixture.rawJWS(header: header, payload: noOrigid)]).reason?.code == .claimsInvalid)
        let stringIAT = #"{"attest":"A","dest":{"tn":["12025550199"]},"iat":"\#(iat)","orig":{"tn":"12025550100"},"origid":"x"}"#
        #expect(await fixture.verify([try fixture.rawJWS(header: header, payload: stringIAT)]).reason?.code == .claimsInvalid)
        let rs256 = #"{"alg":"RS256","ppt":"shaken","typ":"passport","x5u":"\#(Fixture.x5u)"}"#
        let good = #"{"attest":"A","dest":{"tn":["12025550199"]},"iat":\#(iat),"orig":{"tn":"12025550100"},"origid":"x"}"#
        #expect(await fixture.verify([try fixture.rawJWS(header: rs256, payload: good)]).reason?.code == .unsupportedAlgorithm)
        #expect(await fixture.verify([try fixture.rawJWS(header: header, payload: good)]).status == .valid)
        let badBase64 = "e.e30.AAAA;info=<\(Fixture.x5u)>;alg=ES256;ppt=shaken"
        let verdict = await fixture.verify([badBase64])
        #expect(verdict.reason?.code == .jwsMalformed)
        #expect(verdict.reason?.sipStatus == 438)
    }

    @Test func cacheHitAvoidsSecondFetch() async throws {
        let fixture = try Fixture()
        #expect(await fixture.verify([try fixture.sign()]).status == .valid)
        #expect(await fixture.verify([try fixture.sign(attest: .b)]).status == .valid)
        #expect(fixture.fetcher.count == 1)
        #expect(await fixture.verifier.cachedCredentialCount() == 1)
    }

    @Test func cacheHonoursMaxAge() async throws {
        let fixture = try Fixture(cacheControl: "max-age=10")
        #expect(await fixture.verify([try fixture.sign()]).status == .valid)
        let later = fixture.now.addingTimeInterval(9)
        #expect(await fixture.verify([try fixture.sign(iat: later)], at: later).status == .valid)
        #expect(fixture.fetcher.count == 1)
        let expired = fixture.now.addingTimeInterval(11)
        #expect(await fixture.verify([try fixture.sign(iat: expired)], at: expired).status == .valid)
        #expect(fixture.fetcher.count == 2)
    }

    @Test func cacheNoStoreFetchesEveryTime() async throws {
        let fixture = try Fixture(cacheControl: "no-store")
        #expect(await fixture.verify([try fixture.sign()]).status == .valid)
        #expect(await fixture.verify([try fixture.sign()]).status == .valid)
        #expect(fixture.fetcher.count == 2)
    }

    @Test func cacheNeverOutlivesCertificate() async throws {
        var options = TestPKI.Options()
        options.leafNotAfter = 30
        let fixture = try Fixture(options: options, cacheControl: "max-age=3600")
        #expect(await fixture.verify([try fixture.sign()]).status == .valid)
        let later = fixture.now.addingTimeInterval(31)
        let verdict = await fixture.verify([try fixture.sign(iat: later)], at: later)
        #expect(verdict.reason?.code == .certificateExpired)
        #expect(fixture.fetcher.count == 2)
    }

    @Test func unreachableX5UFromFetcher() async throws {
        let fixture = try Fixture()
        let verdict = await fixture.verify([try fixture.sign(x5u: "https://elsewhere.example/sp.pem")])
        #expect(verdict.reason?.code == .x5uBadResponse)
        #expect(verdict.reason?.sipStatus == 436)
    }

    @Test func signerLoadsPEMKeysOfBothForms() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let key = P256.Signing.PrivateKey()
        let pkcs8 = try directory.write("k8.pem", key.pemRepresentation)
        let signer = try PASSporTSigner(keyPEMFile: pkcs8, x5u: Fixture.x5u)
        #expect(signer.privateKey.publicKey.rawRepresentation == key.publicKey.rawRepresentation)
        #expect(throws: IdentityConfigurationError.self) { try PASSporTSigner(keyPEMFile: directory.path + "/none", x5u: "") }
        #expect(throws: SigningError.self) { try signer.sign(orig: "alice", dest: ["1"], attest: .a, iat: Date()) }
    }
}
