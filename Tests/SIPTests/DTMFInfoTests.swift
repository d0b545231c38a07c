import SIP
import Testing

@Suite("DTMF in SIP INFO bodies")
struct DTMFInfoTests {
    @Test(arguments: [
        ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", DTMFInfo.Parsed.digit("5", durationMs: 160)),
        ("application/dtmf-relay", "Signal= 10\nDuration= 250\n", .digit("*", durationMs: 250)),
        ("Application/DTMF-Relay", "signal=11", .digit("#", durationMs: nil)),
        ("application/dtmf-relay", "Signal=d\r\n", .digit("D", durationMs: nil)),
        ("application/dtmf", "7", .digit("7", durationMs: nil)),
        ("application/dtmf", "#\r\n", .digit("#", durationMs: nil)),
        ("application/dtmf-relay", "Duration=160\r\n", .malformed("no valid Signal= line")),
        ("application/dtmf-relay", "Signal=X\r\n", .malformed("no valid Signal= line")),
        ("application/dtmf", "77", .malformed("body is not a DTMF key")),
        ("text/plain", "Signal=5", .unsupportedType),
    ])
    func parses(type: String, body: String, expected: DTMFInfo.Parsed) {
        #expect(DTMFInfo.parse(contentType: type, body: body) == expected)
    }

    @Test func noContentTypeIsUnsupported() {
        #expect(DTMFInfo.parse(contentType: nil, body: "Signal=1") == .unsupportedType)
    }
}
