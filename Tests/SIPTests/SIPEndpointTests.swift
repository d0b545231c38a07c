import Foundation
import Logging
import NIOConcurrencyHelpers
import SIP
import Testing

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

    /// A UDP socket playing the caller.
    final class Peer {
        let fd: Int32
        let port: Int
        init() {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            self.fd = fd
            self.port = Int(UInt16(bigEndian: address.sin_port))
        }
        deinit { close(fd) }

        func send(_ text: String, to port: Int) {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bytes = Array(text.utf8)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }

        /// The next response whose status line starts with `prefix` (skipping provisional ones we don't want).
        func receive(statusPrefix prefix: String) -> String? {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                guard n > 0 else { return nil }
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                if text.hasPrefix(prefix) { return text }
            }
        }
    }

    static func freePort() -> Int { Peer().port }

    /// A PASSporT-sized token (real ones are 400-700 bytes; this one passes the 1 KiB context-header cap).
    static let longIdentity = String(repeating: "eyJhbGciOiJFUzI1NiJ9", count: 60)

    func message(_ method: String, port: Int, peer: Peer, callID: String, cseq: Int = 1, body: String = "", extra: String = "") -> String {
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
        let peer = Peer()
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        peer.send(message("INVITE", port: port, peer: peer, callID: "call-1", body: sdp, extra: "X-Campaign: spring\r\nP-Asserted-Identity: <sip:+15550199@carrier.example;verstat=TN-Validation-Passed>\r\nIdentity: \(Self.longIdentity);info=<https://cert.example/x.pem>;alg=ES256;ppt=shaken\r\nIdentity: second;info=<https://cert.example/y.pem>\r\n"), to: port)

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

        endpoint.respond(invite.leg, status: 486, phrase: "Busy Here")
        let response = try #require(peer.receive(statusPrefix: "SIP/2.0 486"))
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
        let peer = Peer()
        peer.send(message("OPTIONS", port: port, peer: peer, callID: "ping-1"), to: port)
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
