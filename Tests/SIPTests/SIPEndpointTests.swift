import Foundation
import Logging
import NIOConcurrencyHelpers
import SIP
import Testing
import TrunklineTestSupport

/// The sofia endpoint against raw SIP over a loopback UDP socket: what leaves the module are values only.
@Suite("SIP endpoint on sofia", .serialized)
struct SIPEndpointTests {
    final class Events: Sendable {
        let received = NIOLockedValueBox<[SIPEvent]>([])
        let signal = DispatchSemaphore(value: 0)
        func append(_ event: SIPEvent) {
            received.withLockedValue { $0.append(event) }
            signal.signal()
        }
        func next(timeout: Double = 5) -> SIPEvent? {
            guard signal.wait(timeout: .now() + timeout) == .success else { return nil }
            return received.withLockedValue { $0.removeFirst() }
        }
    }

    static func freePort() -> Int { (try? UDPPeer().port) ?? 0 }

    /// A PASSporT-sized token (real ones are 400-700 bytes; this one passes the 1 KiB context-header cap).
    static let longIdentity = String(repeating: "eyJhbGciOiJFUzI1NiJ9", count: 60)

    func message(_ method: String, port: Int, peer: UDPPeer, callID: String, cseq: Int = 1, body: String = "", extra: String = "") -> String {
        let contentType = body.isEmpty ? "" : "Content-Type: application/sdp\r\n"
        return "\(method) sip:+15550100@127.0.0.1:\(port) SIP/2.0\r\n"
            + "Via: SIP/2.0/UDP 127.0.0.1:\(peer.port);branch=z9hG4bK-\(callID)-\(cseq)\r\n"
            + "From: \"Alice\" <sip:+15550199@127.0.0.1>;tag=abc\r\nTo: <sip:+15550100@127.0.0.1>\r\n"
            + "Call-ID: \(callID)\r\nCSeq: \(cseq) \(method)\r\nContact: <sip:alice@127.0.0.1:\(peer.port)>\r\nMax-Forwards: 70\r\n"
            + extra + contentType + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
    }

    @Test func inviteBecomesValuesAndRejectionEndsTheLeg() throws {
        let port = Self.freePort()
        let events = Events()
        let endpoint = SIPEndpoint(configuration: .init(host: "127.0.0.1", port: port), logger: Logger(label: "test")) { events.append($0) }
        try endpoint.start()
        defer { endpoint.shutdown() }
        let peer = try UDPPeer()
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        try peer.send(Data(message("INVITE", port: port, peer: peer, callID: "call-1", body: sdp, extra: "X-Campaign: spring\r\nP-Asserted-Identity: <sip:+15550199@carrier.example;verstat=TN-Validation-Passed>\r\nIdentity: \(Self.longIdentity);info=<https://cert.example/x.pem>;alg=ES256;ppt=shaken\r\nIdentity: second;info=<https://cert.example/y.pem>\r\n").utf8), to: port)

        guard case .invite(let invite) = events.next() else { Issue.record("no invite event"); return }
        #expect(invite.callID == "call-1")
        #expect(invite.requestUser == "+15550100")
        #expect(invite.from.user == "+15550199")
        #expect(invite.from.text.contains("Alice"))
        #expect(invite.source == SIPSource(host: "127.0.0.1", port: peer.port, transport: .udp))
        #expect(invite.body == sdp)
        #expect(invite.extensionHeaders.contains { $0.name == "X-Campaign" && $0.value == "spring" })
        // STIR/SHAKEN inputs arrive whole (an Identity header is longer than other context headers may be).
        #expect(invite.identityHeaders == [
            "\(Self.longIdentity);info=<https://cert.example/x.pem>;alg=ES256;ppt=shaken", "second;info=<https://cert.example/y.pem>",
        ])
        #expect(invite.assertedIdentity == "<sip:+15550199@carrier.example;verstat=TN-Validation-Passed>")

        // sofia writes the response after `respond` has returned, when Swift's temporary C copy of a short
        // phrase is gone: the status line must still carry it.
        endpoint.respond(invite.leg, status: 486, phrase: "Busy Here")
        let response = try #require(peer.receive(statusPrefix: "SIP/2.0 486"))
        #expect(response.hasPrefix("SIP/2.0 486 Busy Here\r\n"), "\(response.prefix(80))")
        #expect(response.contains("Call-ID: call-1"))
        guard case .terminated(let leg, let cause) = events.next() else { Issue.record("no terminated event"); return }
        #expect(leg == invite.leg)
        #expect(cause == .rejected(status: 486))
    }

    @Test func optionsIsAnsweredWithoutTheApplication() throws {
        let port = Self.freePort()
        let endpoint = SIPEndpoint(configuration: .init(host: "127.0.0.1", port: port), logger: Logger(label: "test")) { _ in }
        try endpoint.start()
        defer { endpoint.shutdown() }
        let peer = try UDPPeer()
        try peer.send(Data(message("OPTIONS", port: port, peer: peer, callID: "ping-1").utf8), to: port)
        #expect(peer.receive(statusPrefix: "SIP/2.0 200") != nil)
    }

    @Test func aBusyPortIsAClearStartError() throws {
        let port = Self.freePort()
        let first = SIPEndpoint(configuration: .init(host: "127.0.0.1", port: port), logger: Logger(label: "test")) { _ in }
        try first.start()
        defer { first.shutdown() }
        let second = SIPEndpoint(configuration: .init(host: "127.0.0.1", port: port), logger: Logger(label: "test")) { _ in }
        #expect(throws: SIPEndpoint.StartError.self) { try second.start() }
    }
}
