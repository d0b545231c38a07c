import SIP
import Testing

@Suite("message/sipfrag status lines (REFER NOTIFY bodies)")
struct SIPFragTests {
    @Test(arguments: [
        ("SIP/2.0 100 Trying\r\n", SIPFrag(status: 100, phrase: "Trying")),
        ("SIP/2.0 180 Ringing", SIPFrag(status: 180, phrase: "Ringing")),
        ("SIP/2.0 200 OK\r\nContact: <sip:bob@example.test>\r\n", SIPFrag(status: 200, phrase: "OK")),
        ("\r\nsip/2.0 603 Declined by user", SIPFrag(status: 603, phrase: "Declined by user")),
        ("SIP/2.0 486", SIPFrag(status: 486, phrase: "")),
    ])
    func aStatusLineIsRead(body: String, expected: SIPFrag) {
        #expect(SIPFrag.parse(body) == expected)
    }

    @Test(arguments: ["", "INVITE sip:bob@example.test SIP/2.0", "SIP/2.0 2000 OK", "SIP/2.0 99 Low", "SIP/2.0 abc OK", "HTTP/1.1 200 OK", "SIP/2.0 700 Beyond"])
    func anythingElseIsNotAStatus(body: String) {
        #expect(SIPFrag.parse(body) == nil)
    }

    @Test func thePhraseKeepsPrintableCharactersAndIsCut() {
        let frag = SIPFrag.parse("SIP/2.0 500 " + String(repeating: "x", count: 300) + "\u{1}")
        #expect(frag?.phrase.count == 100)
    }
}
