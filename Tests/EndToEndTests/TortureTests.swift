import Foundation
import Testing
import TrunklineTestSupport

/// RFC 4475's torture messages, byte-exact from shared/testdata, sent over UDP to the running gateway: each gets
/// the answer the RFC prefers (or one it permits) and the gateway keeps answering.
@Suite("RFC 4475 torture messages", .serialized)
struct TortureTests {
    struct Message: Decodable {
        var name: String
        var file: String
        var `class`: String
        var expect: [String: [String]]
        var also_acceptable: [String: [String]]
    }

    struct Manifest: Decodable {
        var messages: [Message]
    }

    static var folder: URL {
        GatewayProcess.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/testdata/rfc4475")
    }

    /// Does the list of final statuses received satisfy one of the manifest's tokens?
    static func satisfies(_ finals: [Int], tokens: [String]) -> Bool {
        tokens.contains { token in
            switch token {
            case "none": return finals.isEmpty
            case "any": return true
            case "final": return !finals.isEmpty
            case "final!400": return !finals.isEmpty && !finals.contains(400)
            default:
                guard let first = finals.first else { return false }
                if token.hasSuffix("xx"), let digit = Int(token.prefix(1)) { return first / 100 == digit }
                return Int(token) == first
            }
        }
    }

    @Test func everyTortureMessageGetsAnAcceptableAnswerAndTheGatewaySurvives() async throws {
        let manifestData = try Data(contentsOf: Self.folder.appendingPathComponent("MANIFEST.json"))
        let manifest = try JSONDecoder().decode(Manifest.self, from: manifestData)
        #expect(manifest.messages.count == 50)
        // Routes refuse every call, so well-formed INVITEs get a final answer without setting up media.
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 20), trunks: "  - name: local\n    allow: [127.0.0.0/8]",
            routes: "  - name: closed\n    reject: 480")
        let peer = try UDPPeer()
        var failures: [String] = []
        var dropped: [String] = []
        for (index, message) in manifest.messages.enumerated() {
            let bytes = try Data(contentsOf: Self.folder.appendingPathComponent(message.file))
            try peer.send(bytes, to: gateway.sipPort)
            let callID = Self.callID(in: bytes)
            let probeID = "probe-\(index)-\(UUID().uuidString)"
            try peer.send(Data(Self.options(callID: probeID, peerPort: peer.port, gatewayPort: gateway.sipPort).utf8), to: gateway.sipPort)

            var finals: [Int] = []
            var probeAnswered = false
            let expectsFinal = !(message.expect["udp"] ?? []).contains("none")
            // Read until the probe is answered (the gateway is alive and has processed the message before it),
            // and, when a final answer is expected, until it has come.
            // An INVITE's answer is posted back to the sofia thread, so it may trail the probe's: after the probe,
            // allow it one more second.
            var deadline = Date().addingTimeInterval(5)
            while Date() < deadline, !probeAnswered || (expectsFinal && finals.isEmpty) {
                guard let response = peer.receive(until: deadline) else { break }
                guard let status = Self.status(of: response) else { continue }
                if response.contains(probeID) {
                    if status >= 200, !probeAnswered { deadline = min(deadline, Date().addingTimeInterval(1)) }
                    probeAnswered = probeAnswered || status >= 200
                } else if status >= 200, callID == nil || response.contains(callID!) {
                    finals.append(status)
                }
            }
            if !probeAnswered { failures.append("\(message.name): gateway did not answer the OPTIONS probe after it") }
            let allowed = (message.expect["udp"] ?? []) + (message.also_acceptable["udp"] ?? [])
            if finals.isEmpty, !allowed.contains("none"), Self.mayDrop(message, bytes: bytes) {
                dropped.append(message.name)
            } else if !Self.satisfies(finals, tokens: allowed) {
                failures.append("\(message.name): got \(finals.isEmpty ? "no answer" : "\(finals)"), expected \(allowed)")
            }
        }
        // Sofia discards what it cannot answer safely; the design allows dropping, so it is reported, not failed.
        print("RFC 4475 over UDP: \(manifest.messages.count - dropped.count - failures.count) answered as the RFC prefers or permits, \(dropped.count) dropped (\(dropped.joined(separator: ", "))), \(failures.count) wrong")
        #expect(failures.isEmpty, "\(failures.count) message(s) wrong:\n\(failures.joined(separator: "\n"))\n--- gateway log ---\n\(gateway.log.suffix(4000))")
    }

    /// A message may go unanswered if it is malformed (dropping is an allowed answer), or if its top Via names a
    /// transport other than UDP, the one it came on: sofia's Via check discards those, since a response would have
    /// to travel over that transport. A well-formed message with a UDP Via must be answered.
    static func mayDrop(_ message: Message, bytes: Data) -> Bool {
        if message.class != "valid" { return true }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let via = text.split(whereSeparator: \.isNewline).first(where: { $0.lowercased().hasPrefix("via:") || $0.lowercased().hasPrefix("v:") }) else {
            return true
        }
        return !via.uppercased().contains("/UDP")
    }

    static func callID(in bytes: Data) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(whereSeparator: \.isNewline) {
            let lower = line.lowercased()
            if lower.hasPrefix("call-id:") || lower.hasPrefix("i:") || lower.hasPrefix("call-id :") {
                let value = line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
                if let value, !value.isEmpty { return value }
            }
        }
        return nil
    }

    static func status(of response: String) -> Int? {
        guard response.hasPrefix("SIP/2.0 ") else { return nil }
        return Int(response.dropFirst(8).prefix(3))
    }

    static func options(callID: String, peerPort: Int, gatewayPort: Int) -> String {
        "OPTIONS sip:probe@127.0.0.1:\(gatewayPort) SIP/2.0\r\n"
            + "Via: SIP/2.0/UDP 127.0.0.1:\(peerPort);branch=z9hG4bK-\(callID)\r\n"
            + "From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: \(callID)\r\n"
            + "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    }
}
