import Foundation
import Testing
@testable import Identity

@Suite struct IdentityHeaderParsingTests {
    @Test func parsesParametersQuotesAndBrackets() throws {
        let header = try IdentityHeader.parse(
            "aaa.bbb.ccc ; info=<https://x.example/a;b.pem> ;alg=ES256;ppt=\"shaken\";foo"
        ).get()
        #expect(header.passport == "aaa.bbb.ccc")
        #expect(header.info == "https://x.example/a;b.pem")
        #expect(header.alg == "ES256")
        #expect(header.ppt == "shaken")
        #expect(header.parameters.map(\.name) == ["info", "alg", "ppt", "foo"])
    }

    @Test(arguments: [
        ("", IdentityReason.Code.identityHeaderMalformed),
        (";info=<https://a>", .identityHeaderMalformed),
        ("a!b.c.d;info=<https://a>", .identityHeaderMalformed),
        ("a.b.c;info=<https://a", .infoMalformed),
        ("a.b.c;info=<>", .infoMalformed),
        ("a.b.c;ppt=\"shaken", .identityHeaderMalformed),
        (String(repeating: "a", count: 9000), .identityHeaderMalformed),
    ])
    func rejectsMalformedHeaders(value: String, code: IdentityReason.Code) {
        guard case .failure(let reason) = IdentityHeader.parse(value) else {
            Issue.record("accepted \(value.prefix(40))")
            return
        }
        #expect(reason.code == code)
    }

    @Test func bareInfoIsAWarning() throws {
        let header = try IdentityHeader.parse("a.b.c;info=https://x.example/a.pem").get()
        #expect(header.info == "https://x.example/a.pem")
        #expect(header.warnings.count == 1)
    }
}

@Suite struct PASSporTParsingTests {
    static let header = #"{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://cert.example.org/passport.cer"}"#
    static let payload =
        #"{"attest":"A","dest":{"tn":["12155550131"]},"iat":1443208345,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"}"#
    static let fakeSignature = Base64URL.encode([UInt8](repeating: 7, count: 64))

    static func compact(_ header: String, _ payload: String, signature: String = fakeSignature) -> String {
        Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8)) + "." + signature
    }

    @Test func parsesRFC8588Example() throws {
        let text = Self.compact(Self.header, Self.payload)
        let passport = try PASSporT.parse(text).get()
        #expect(passport.claims.attest == .a)
        #expect(passport.claims.destTNs == ["12155550131"])
        #expect(passport.claims.origTN == "12155550121")
        #expect(passport.claims.iat == 1_443_208_345)
        #expect(passport.header.x5u == "https://cert.example.org/passport.cer")
        #expect(String(decoding: passport.signingInput, as: UTF8.self) == String(text.split(separator: ".")[0...1].joined(separator: ".")))
    }

    @Test(arguments: [
        ("eyJhbGciOiJFUzI1NiJ9.e30", IdentityReason.Code.jwsMalformed),  // two parts
        ("a.b.c.d", .jwsMalformed),
        ("..", .jwsMalformed),
        ("e." + Base64URL.encode(Array("{}".utf8)) + "." + PASSporTParsingTests.fakeSignature, .jwsMalformed),  // bad base64
        (PASSporTParsingTests.compact(PASSporTParsingTests.header, PASSporTParsingTests.payload, signature: "AAAA"), .jwsMalformed),
        (PASSporTParsingTests.compact("[1]", PASSporTParsingTests.payload), .passportHeaderInvalid),
        (PASSporTParsingTests.compact(#"{"alg":"RS256","ppt":"shaken","typ":"passport","x5u":"https://a"}"#, PASSporTParsingTests.payload), .unsupportedAlgorithm),
        (PASSporTParsingTests.compact(#"{"alg":"ES256","ppt":"div","typ":"passport","x5u":"https://a"}"#, PASSporTParsingTests.payload), .unsupportedPPT),
        (PASSporTParsingTests.compact(#"{"alg":"ES256","ppt":"shaken","typ":"JWT","x5u":"https://a"}"#, PASSporTParsingTests.payload), .passportHeaderInvalid),
        (PASSporTParsingTests.compact(#"{"alg":"ES256","ppt":"shaken","typ":"passport"}"#, PASSporTParsingTests.payload), .passportHeaderInvalid),
        (PASSporTParsingTests.compact(PASSporTParsingTests.header, "not json"), .claimsInvalid),
        (PASSporTParsingTests.compact(PASSporTParsingTests.header, #"{"attest":"D","dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"},"origid":"x"}"#), .claimsInvalid),
        (PASSporTParsingTests.compact(PASSporTParsingTests.header, #"{"attest":"A","dest":{"tn":"1"},"iat":1,"orig":{"tn":"1"},"origid":"x"}"#), .claimsInvalid),
        (PASSporTParsingTests.compact(PASSporTParsingTests.header, #"{"attest":"A","dest":{"tn":["1"]},"iat":"1443208345","orig":{"tn":"1"},"origid":"x"}"#), .claimsInvalid),
        (PASSporTParsingTests.compact(PASSporTParsingTests.header, #"{"attest":"A","dest":{"tn":["1"]},"iat":1.5,"orig":{"tn":"1"},"origid":"x"}"#), .claimsInvalid),
        (PASSporTParsingTests.compact(PASSporTParsingTests.header, #"{"attest":"A","dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"}}"#), .claimsInvalid),
        (PASSporTParsingTests.compact(PASSporTParsingTests.header, #"{"attest":"A","dest":"{\"tn\":\"01256500600\"}","iat":1,"orig":"{\"tn\":\"01256500600\"}","origid":"x"}"#), .claimsInvalid),
    ])
    func rejectsMalformedPASSporTs(text: String, code: IdentityReason.Code) {
        guard case .failure(let reason) = PASSporT.parse(text) else {
            Issue.record("accepted \(text.prefix(60))")
            return
        }
        #expect(reason.code == code, "\(reason)")
    }

    @Test func hugeDestListIsCapped() {
        let dest = (0..<100).map { "\"1202555\($0)\"" }.joined(separator: ",")
        let payload = #"{"attest":"A","dest":{"tn":["# + dest + #"]},"iat":1,"orig":{"tn":"1"},"origid":"x"}"#
        guard case .failure(let reason) = PASSporT.parse(Self.compact(Self.header, payload)) else {
            Issue.record("accepted 100 destinations")
            return
        }
        #expect(reason.code == .claimsInvalid)
    }
}

@Suite struct TelephoneNumberTests {
    @Test(arguments: [
        ("+12025550100", "12025550100"),
        ("12025550100", "12025550100"),
        ("+1 (202) 555-0100", "12025550100"),
        ("tel:+1-202-555-0100", "12025550100"),
        ("sip:+12025550100@example.com;user=phone", "12025550100"),
        ("\"Alice\" <sips:+1.202.555.0100@example.com>;tag=1", "12025550100"),
        ("<tel:+12025550100;verstat=TN-Validation-Passed>", "12025550100"),
    ])
    func canonicalises(input: String, expected: String) {
        #expect(TelephoneNumber.canonical(input) == expected)
    }

    @Test(arguments: ["sip:alice@example.com", "", "+", "tel:12ab"])
    func rejectsNonNumbers(input: String) {
        #expect(TelephoneNumber.canonical(input) == nil)
    }
}

@Suite struct VerstatTests {
    @Test(arguments: [
        ("TN-Validation-Passed", CarrierVerstat.Outcome.passed, nil as Attestation?, [] as [String]),
        ("TN-Validation-Passed-A", .passed, .a, []),
        ("TN-Validation-Passed-B", .passed, .b, []),
        ("tn-validation-passed-c", .passed, .c, []),
        ("TN-Validation-Failed", .failed, nil, []),
        ("TN-Validation-Failed-B", .failed, .b, []),
        ("No-TN-Validation", .noValidation, nil, []),
        ("NULL", .noValidation, nil, []),
        ("TN-Validation-Passed-A-Diverted", .passed, .a, ["Diverted"]),
        ("TN-Validation-Passed-Passthrough", .passed, nil, ["Passthrough"]),
        ("No-TN-Validation-Diverted", .noValidation, nil, ["Diverted"]),
        ("\"TN-Validation-Passed-A\"", .passed, .a, []),
    ])
    func parsesTwilioValues(value: String, outcome: CarrierVerstat.Outcome, attestation: Attestation?, qualifiers: [String]) throws {
        let parsed = try #require(CarrierVerstat.parse(value))
        #expect(parsed.outcome == outcome)
        #expect(parsed.attestation == attestation)
        #expect(parsed.qualifiers == qualifiers)
    }

    @Test(arguments: ["", "TN-Validation", "TN-Validation-PassedX", "passed", "verstat"])
    func rejectsUnknownValues(value: String) {
        #expect(CarrierVerstat.parse(value) == nil)
    }

    @Test(arguments: [
        ("\"John Doe\" <sip:+18889809750@sip.telnyx.com;verstat=TN-Validation-Passed>", CarrierVerstat.Outcome.passed, nil as Attestation?),
        ("<sip:+13339990000;verstat=TN-Validation-Passed-B@67.1.1.1:5060>", .passed, .b),
        ("<tel:+12025550100;VERSTAT=TN-Validation-Failed>", .failed, nil),
        ("<sip:+12025550100@example.com>;tag=abc;verstat=No-TN-Validation", .noValidation, nil),
    ])
    func findsVerstatInURIHeaders(header: String, outcome: CarrierVerstat.Outcome, attestation: Attestation?) throws {
        let parsed = try #require(CarrierVerstat.fromURIHeader(header))
        #expect(parsed.outcome == outcome)
        #expect(parsed.attestation == attestation)
    }

    @Test func noVerstatParameter() {
        #expect(CarrierVerstat.fromURIHeader("<sip:+12025550100@example.com;xverstat=TN-Validation-Passed>") == nil)
        #expect(CarrierVerstat.fromURIHeader("<sip:+12025550100@example.com>") == nil)
    }

    @Test func findPrefersTwilioHeaderThenPAIThenFrom() throws {
        let found = try #require(
            CarrierVerstat.find(
                twilioVerStat: "TN-Validation-Failed-C",
                pAssertedIdentity: ["<sip:+1@a;verstat=TN-Validation-Passed>"],
                from: nil
            )
        )
        #expect(found.outcome == .failed)
        let fromPAI = try #require(
            CarrierVerstat.find(twilioVerStat: nil, pAssertedIdentity: ["<sip:+1@a;verstat=TN-Validation-Passed>"], from: "<sip:+1@a;verstat=No-TN-Validation>")
        )
        #expect(fromPAI.outcome == .passed)
        #expect(CarrierVerstat.find(twilioVerStat: nil, pAssertedIdentity: [], from: "<sip:+1@a>") == nil)
    }

    @Test func combinePolicy() throws {
        let local = IdentityVerdict(status: .invalid, reason: .init(.badSignature, "x"))
        let absent = IdentityVerdict(status: .absent, reason: .init(.noIdentity, "none"))
        let carrier = try #require(CarrierVerstat.parse("TN-Validation-Passed-B"))
        #expect(IdentityVerdict.combine(local: local, carrier: carrier, preferCarrier: false) == local)
        let preferred = IdentityVerdict.combine(local: local, carrier: carrier, preferCarrier: true)
        #expect(preferred.status == .valid && preferred.source == .carrier && preferred.attestation == .b)
        let filled = IdentityVerdict.combine(local: absent, carrier: carrier, preferCarrier: false)
        #expect(filled.status == .valid && filled.source == .carrier)
        #expect(IdentityVerdict.combine(local: absent, carrier: nil, preferCarrier: true) == absent)
        let failed = try #require(CarrierVerstat.parse("TN-Validation-Failed")).verdict
        #expect(failed.status == .invalid && failed.reason?.code == .carrierFailed && failed.reason?.sipStatus == 438)
    }
}

@Suite struct CacheControlTests {
    @Test(arguments: [
        (nil as String?, nil as TimeInterval?),
        ("max-age=600", 600),
        ("public, max-age=600, s-maxage=60", 60),
        ("no-store", 0),
        ("no-cache, max-age=600", 0),
        ("max-age=garbage", nil),
    ])
    func lifetimes(header: String?, expected: TimeInterval?) {
        #expect(CredentialCache.requestedLifetime(cacheControl: header) == expected)
    }
}

@Suite struct X5UPolicyTests {
    @Test(arguments: [
        ("https://cert.example.org/sp.pem", nil as IdentityReason.Code?),
        ("https://cert.example.org:8443/sp.pem", nil),
        ("http://cert.example.org/sp.pem", .x5uNotHTTPS),
        ("ftp://cert.example.org/sp.pem", .x5uNotHTTPS),
        ("https://user:pw@cert.example.org/sp.pem", .x5uForbiddenComponent),
        ("https://user@cert.example.org/sp.pem", .x5uForbiddenComponent),
        ("https://cert.example.org/sp.pem?x=1", .x5uForbiddenComponent),
        ("https://cert.example.org/sp.pem#frag", .x5uForbiddenComponent),
        ("https:///sp.pem", .infoMalformed),
    ])
    func urlRules(url: String, code: IdentityReason.Code?) {
        var warnings: [String] = []
        switch X5UURL.validate(url, standardPorts: [443, 8443], warnings: &warnings) {
        case .success: #expect(code == nil, "accepted \(url)")
        case .failure(let reason): #expect(reason.code == code, "\(url): \(reason)")
        }
        #expect(warnings.isEmpty)
    }

    @Test func oddPortIsAWarning() throws {
        var warnings: [String] = []
        let url = try X5UURL.validate("https://127.0.0.1:9999/a.pem", standardPorts: [443, 8443], warnings: &warnings).get()
        #expect(url.port == 9999 && url.host == "127.0.0.1")
        #expect(warnings.count == 1)
    }

    @Test(arguments: [
        ([127, 0, 0, 1] as [UInt8], true), ([10, 1, 2, 3], true), ([172, 20, 0, 1], true), ([192, 168, 1, 1], true),
        ([169, 254, 169, 254], true), ([100, 64, 0, 1], true), ([0, 0, 0, 0], true), ([224, 0, 0, 1], true),
        ([8, 8, 8, 8], false), ([172, 32, 0, 1], false),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], true),
        ([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], true),
        ([0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], true),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], true),
        ([0x26, 0x06, 0x47, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x11], false),
    ])
    func addressClassification(address: [UInt8], forbidden: Bool) {
        #expect(AddressGuard.isForbidden(address) == forbidden)
    }
}
