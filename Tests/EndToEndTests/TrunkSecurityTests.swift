import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TrunklineTestSupport

/// Carrier-facing security with real peers: digest challenges and bans for inbound INVITEs, registration at a
/// registrar, and the answers to malformed or hostile requests.
@Suite("Trunk security", .serialized)
struct TrunkSecurityTests {
    static func digestCaller(password: String, answered: Bool) throws -> String {
        let template = try String(contentsOf: Sipp.scenarios.appendingPathComponent("digest_caller.xml.template"), encoding: .utf8)
        let after = try String(
            contentsOf: Sipp.scenarios.appendingPathComponent(answered ? "digest_answered.xml.fragment" : "digest_refused.xml.fragment"),
            encoding: .utf8)
        return try OutboundCallTests.writeScenario(
            template.replacingOccurrences(of: "PASSWORD", with: password).replacingOccurrences(of: "AFTER_AUTH\n", with: after),
            name: "digest-caller")
    }

    @Test func aCarrierAnswersTheChallengeAndWrongPasswordsGetTheSourceBanned() async throws {
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: """
                  - name: carrier
                    allow: [127.0.0.0/8]
                    inbound_auth: { username: carrier, password: "in-s3cret", realm: trunk.test, algorithms: [MD5] }
                """,
            routes: "  - name: demo\n    embedded: demo",
            extraConfig: "",
            sipExtra: "limits: { auth_failures: 2, failure_window_s: 60, ban_s: 600 }")
        let good = try await Sipp.run(
            scenario: try Self.digestCaller(password: "in-s3cret", answered: true), gatewayPort: gateway.sipPort, service: "1000",
            holdMilliseconds: 500)
        #expect(good.exitCode == 0, "the challenge must be answerable and the call answered: \(good.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["sip_status"] as? Int == 200)

        // Two wrong passwords within the window: each answered 401, and the second bans the source.
        let wrong = try await Sipp.run(
            scenario: try Self.digestCaller(password: "guess", answered: false), gatewayPort: gateway.sipPort, service: "1000",
            calls: 2)
        #expect(wrong.exitCode == 0, "wrong credentials must get 401 again: \(wrong.output)")
        try await gateway.waitForLog("source banned after repeated failures")
        let banned = try await Sipp.run(
            scenario: try CallFlowTests.rejectionScenario(status: 403, media: "m=audio 6000 RTP/AVP 0"), gatewayPort: gateway.sipPort,
            service: "1000")
        #expect(banned.exitCode == 0, "a banned source gets 403: \(banned.output)")
        let records = try gateway.callRecords()
        #expect(records.filter { ($0["hangup_reason"] as? String)?.contains("digest authentication failed") == true }.count == 2)
        #expect(gateway.log.components(separatedBy: "source banned").count == 2, "the ban is logged once")
        #expect(gateway.log.contains("127.0.0.1"))
        #expect(!gateway.log.contains("in-s3cret"), "the trunk password is never logged")
    }

    @Test func theTrunkRegistersRefreshesBeforeExpiryAndUnregistersAtShutdown() async throws {
        let registrar = try await Sipp.serve(scenario: "registrar.xml", timeoutSeconds: 30)
        defer { registrar.stop() }
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: """
                  - name: carrier
                    allow: [192.0.2.0/24]
                    register: { registrar: "127.0.0.1:\(registrar.port)", username: trunkline, password: reg-secret, expires_s: 2 }
                """,
            routes: "  - name: demo\n    embedded: demo")
        // The refresh is granted 60 s: seeing that grant means the 2 s registration was refreshed in time.
        try await gateway.waitForLog("expires_s=60", timeout: 10)
        // The admin API shows it (AdminRouterTests: only with the admin credentials).
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(gateway.adminPort)/v1/registrations")!)
        request.setValue("Basic " + Data("\(OutboundCallTests.account):test-token".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        let body = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let registrations = try #require(body?["registrations"] as? [[String: Any]], "\(String(decoding: data, as: UTF8.self))")
        let carrier = try #require(registrations.first)
        let (trunk, state, expires) = (carrier["trunk"] as? String, carrier["state"] as? String, carrier["expires_s"] as? Int)
        #expect(registrations.count == 1)
        #expect(trunk == "carrier" && state == "registered" && expires == 60, "\(carrier)")
        let since = (carrier["since"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
        #expect(since != nil, "since is an ISO 8601 time: \(carrier)")
        #expect(!String(decoding: data, as: UTF8.self).contains("reg-secret"))
        gateway.stop()
        let result = await registrar.result()
        #expect(result.exitCode == 0, "challenge, refresh and un-REGISTER must reach the registrar: \(result.output)")
        #expect(!gateway.log.contains("reg-secret"))
    }

    /// `on_ban: drop`: a banned source's INVITE gets no final answer (only sofia's 100 Trying).
    @Test func aBannedSourceIsIgnoredWhenTheBanDrops() async throws {
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: "  - name: elsewhere\n    allow: [10.0.0.0/8]",
            routes: "  - name: closed\n    reject: 480", sipExtra: "limits: { auth_failures: 1, on_ban: drop }")
        let peer = try UDPPeer()
        func invite(_ callID: String) -> Data {
            Data(("INVITE sip:1000@127.0.0.1:\(gateway.sipPort) SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:\(peer.port);branch=z9hG4bK\(callID)\r\n"
                + "From: <sip:+15551230001@127.0.0.1>;tag=t-\(callID)\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: \(callID)\r\n"
                + "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:caller@127.0.0.1:\(peer.port)>\r\nContent-Length: 0\r\n\r\n").utf8)
        }
        func statuses(_ callID: String, for seconds: Double) -> [Int] {
            var result: [Int] = []
            let deadline = Date().addingTimeInterval(seconds)
            while let response = peer.receive(until: deadline) {
                if response.contains("Call-ID: \(callID)"), let code = Int(response.dropFirst(8).prefix(3)) { result.append(code) }
            }
            return result
        }
        // From a source on no trunk: 403, and that one failure bans it.
        try peer.send(invite("first"), to: gateway.sipPort)
        #expect(statuses("first", for: 2).contains(403))
        try await gateway.waitForLog("source banned after repeated failures")
        try peer.send(invite("second"), to: gateway.sipPort)
        // 3 s would have seen the 480 that releasing the transaction at once makes nua send.
        #expect(statuses("second", for: 3).allSatisfy { $0 < 200 }, "a dropped INVITE gets no final answer")
    }

    /// Raw requests the carrier side should never send, each answered as RFC 3261 says; the gateway keeps going.
    @Test func hostileRequestsGetTheirErrorAnswers() async throws {
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: "  - name: local\n    allow: [127.0.0.0/8]",
            routes: "  - name: closed\n    reject: 480")
        let peer = try UDPPeer()
        func request(_ method: String, callID: String, branch: String, maxForwards: Int = 70, extra: String = "", body: String = "") -> String {
            "\(method) sip:1000@127.0.0.1:\(gateway.sipPort) SIP/2.0\r\n"
                + "Via: SIP/2.0/UDP 127.0.0.1:\(peer.port);branch=z9hG4bK\(branch)\r\n"
                + "From: <sip:+15551230001@127.0.0.1>;tag=t-\(callID)\r\nTo: <sip:1000@127.0.0.1>\r\n"
                + "Call-ID: \(callID)\r\nCSeq: 1 \(method)\r\nMax-Forwards: \(maxForwards)\r\n"
                + "Contact: <sip:caller@127.0.0.1:\(peer.port)>\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        func finalAnswer(to callID: String) -> String? {
            let deadline = Date().addingTimeInterval(5)
            while let response = peer.receive(until: deadline) {
                if response.contains(callID), let code = Int(response.dropFirst(8).prefix(3)), code >= 200 { return response }
            }
            return nil
        }

        try peer.send(Data(request("INVITE", callID: "mf0", branch: "mf0", maxForwards: 0).utf8), to: gateway.sipPort)
        #expect(finalAnswer(to: "mf0")?.hasPrefix("SIP/2.0 483") == true, "Max-Forwards: 0 → 483 Too Many Hops")

        try peer.send(Data(request("PUBLISHX", callID: "unknown", branch: "unk").utf8), to: gateway.sipPort)
        let unknown = finalAnswer(to: "unknown")
        #expect(unknown.map { $0.hasPrefix("SIP/2.0 501") || $0.hasPrefix("SIP/2.0 405") } == true, "\(unknown ?? "no answer")")
        #expect(unknown?.contains("Allow:") == true || unknown?.hasPrefix("SIP/2.0 501") == true)

        // Allow names only what the gateway acts on: a peer must not refresh by UPDATE or transfer us by REFER and
        // be ignored. Those methods get 405 with the same list.
        let handled = "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, INFO, NOTIFY\r\n"
        try peer.send(Data(request("OPTIONS", callID: "options", branch: "opt").utf8), to: gateway.sipPort)
        let options = finalAnswer(to: "options")
        #expect(options?.hasPrefix("SIP/2.0 200") == true && options?.contains(handled) == true, "\(options ?? "no answer")")
        for method in ["UPDATE", "REFER", "MESSAGE", "SUBSCRIBE"] {
            try peer.send(Data(request(method, callID: "na-\(method)", branch: "na\(method)", extra: "Event: presence\r\nRefer-To: <sip:2000@127.0.0.1>\r\n").utf8), to: gateway.sipPort)
            let answer = finalAnswer(to: "na-\(method)")
            #expect(answer?.hasPrefix("SIP/2.0 405") == true && answer?.contains(handled) == true, "\(method): \(answer ?? "no answer")")
        }

        // The same INVITE twice on different branches (a request that forked back to us): the second is a loop.
        try peer.send(Data(request("INVITE", callID: "loop", branch: "loop1").utf8), to: gateway.sipPort)
        try peer.send(Data(request("INVITE", callID: "loop", branch: "loop2").utf8), to: gateway.sipPort)
        var loopFinals: [String] = []
        let deadline = Date().addingTimeInterval(5)
        while loopFinals.count < 2, let response = peer.receive(until: deadline) {
            if response.contains("Call-ID: loop"), let code = Int(response.dropFirst(8).prefix(3)), code >= 200 { loopFinals.append(String(code)) }
        }
        #expect(loopFinals.contains("482"), "merged request → 482 Loop Detected: \(loopFinals)")

        // A message over sofia's size cap.
        let padding = "X-Padding: " + String(repeating: "a", count: 1000) + "\r\n"
        try peer.send(Data(request("INVITE", callID: "huge", branch: "huge", extra: String(repeating: padding, count: 40)).utf8), to: gateway.sipPort)
        let huge = finalAnswer(to: "huge")
        #expect(huge.map { $0.hasPrefix("SIP/2.0 413") || $0.hasPrefix("SIP/2.0 400") || $0.hasPrefix("SIP/2.0 513") } ?? true, "\(huge ?? "dropped")")

        // Still answering.
        try peer.send(Data(request("OPTIONS", callID: "alive", branch: "alive").utf8), to: gateway.sipPort)
        #expect(finalAnswer(to: "alive")?.hasPrefix("SIP/2.0 200") == true)
    }
}

/// SIP over TLS with certificates made by scripts/make-dev-cert.sh, and baresip as the caller or the callee.
@Suite("SIP over TLS", .serialized)
struct TLSTests {
    /// A fresh folder with `agent.pem` (key and self-signed certificate for `host`) and `cafile.pem`.
    static func makeCertificates(host: String = "localhost") throws -> URL {
        let certificates = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-tls-\(UUID().uuidString)")
        let script = Process()
        script.executableURL = URL(fileURLWithPath: GatewayProcess.packageRoot.appendingPathComponent("scripts/make-dev-cert.sh").path)
        script.arguments = [certificates.path, host]
        script.standardOutput = FileHandle.nullDevice
        try script.run()
        script.waitUntilExit()
        guard script.terminationStatus == 0 else { throw HarnessError("make-dev-cert.sh failed: \(script.terminationStatus)") }
        return certificates
    }

    @Test func aSoftphoneCallsOverTLSWithTheDevCertificate() async throws {
        let certificates = try Self.makeCertificates()
        defer { try? FileManager.default.removeItem(at: certificates) }

        let tlsPort = try FreePort.sipPort()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: "  - name: local\n    allow: [127.0.0.0/8]",
            routes: "  - name: demo\n    embedded: demo",
            sipExtra: "tls: { port: \(tlsPort), certificate_dir: \(certificates.path) }")
        #expect(gateway.log.contains("tls:\(tlsPort)"))
        let phone = try Baresip(
            dial: "sip:1000@127.0.0.1:\(tlsPort);transport=tls", mediaEncryption: nil,
            microphone: [Int16](repeating: 0, count: 8000 * 3), microphoneRate: 8000,
            extraConfig: "sip_cafile \(certificates.appendingPathComponent("cafile.pem").path)")
        do {
            try await phone.waitForLog("Call established", timeout: 15)
        } catch {
            Issue.record("baresip did not get through: \(phone.log)\n\(gateway.log.suffix(3000))")
            await phone.stop()
            return
        }
        await phone.stop()
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["sip_status"] as? Int == 200)
        #expect((record["source"] as? String)?.hasPrefix("tls:127.0.0.1:") == true, "\(record)")
        #expect(record["hangup_by"] as? String == "caller")
    }

    /// The gateway calls baresip over TLS through a trunk. A server certificate the gateway's `cafile.pem` vouches
    /// for gets the call through (and baresip's BYE back); one nobody vouched for, or one made out to another host,
    /// never gets the INVITE (so nobody on the path can take the call). sofia reports nothing for a failed
    /// verification, so the attempt ends at the trunk's invite timeout, in the record, not silently. With
    /// `verify_server: false` any certificate will do.
    @Test(arguments: [
        ("127.0.0.1", true, true, true), ("127.0.0.1", false, true, false), ("other.example", true, true, false),
        ("other.example", false, false, true),
    ])
    func anOutboundTLSCallGoesOnlyToAServerWithATrustedCertificate(
        certificateHost: String, trusted: Bool, verify: Bool, reached: Bool
    ) async throws {
        let ours = try Self.makeCertificates()
        let theirs = try Self.makeCertificates(host: certificateHost)
        defer {
            try? FileManager.default.removeItem(at: ours)
            try? FileManager.default.removeItem(at: theirs)
        }
        if trusted {
            let trustedCAs = ours.appendingPathComponent("cafile.pem")
            let both = try Data(contentsOf: trustedCAs) + Data(contentsOf: theirs.appendingPathComponent("cafile.pem"))
            try both.write(to: trustedCAs)
        }
        let phone = try Baresip(
            dial: nil, mediaEncryption: nil, microphone: [Int16](repeating: 0, count: 8000 * 5), microphoneRate: 8000,
            user: OutboundCallTests.calledNumber, extraConfig: "sip_certificate \(theirs.appendingPathComponent("agent.pem").path)")
        try await phone.waitForLog("baresip is ready", timeout: 15)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: OutboundCallTests.trunk(addresses: ["127.0.0.1:\(phone.tlsPort);transport=tls"], extra: "      invite_timeout_ms: 3000"),
            routes: OutboundCallTests.demoRoute,
            sipExtra: "tls: { port: \(try FreePort.sipPort()), certificate_dir: \(ours.path), verify_server: \(verify) }")
        let (status, placed) = try await OutboundCallTests.placeCall(gateway)
        #expect(status == 201, "\(placed)")
        if reached {
            do {
                try await phone.waitForLog("Call established", timeout: 15)
            } catch {
                Issue.record("baresip was not reached over TLS: \(phone.log)\n\(gateway.log.suffix(3000))")
            }
            await phone.stop()
        }
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        if reached {
            #expect(record["outcome"] as? String == "answered", "\(record)")
            #expect(record["hangup_by"] as? String == "callee", "\(record)")
        } else {
            #expect(record["outcome"] as? String == "no-answer", "\(record)\n\(gateway.log.suffix(3000))")
            #expect(record["sip_status"] as? Int == 408, "\(record)")
            #expect(record["answer_time"] == nil)
            #expect(!phone.log.contains("Incoming call"), "\(phone.log)")
            await phone.stop()
        }
    }
}
