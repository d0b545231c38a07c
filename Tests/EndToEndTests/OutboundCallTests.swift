import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TrunklineTestSupport

/// Calls the gateway places through a trunk, with sipp as the carrier's far end.
@Suite("Outbound calls", .serialized)
struct OutboundCallTests {
    static let account = "AC" + String(repeating: "0", count: 32)

    /// A callee scenario from the template (see callee_answer.xml.template for what each part does).
    /// `offerCheck`: a regular expression our SDP offer must match; `answerMedia`: the 200's media lines instead
    /// of PCMU.
    static func calleeScenario(
        challenge: (user: String, password: String, port: Int)? = nil, callerHeader: String = "From:", callerPattern: String,
        earlyMedia: Bool = false, offerCheck: String? = nil, answerMedia: String? = nil
    ) throws -> String {
        var text = try String(contentsOf: Sipp.scenarios.appendingPathComponent("callee_answer.xml.template"), encoding: .utf8)
        if let answerMedia {
            let pcmu = "      m=audio [media_port] RTP/AVP 0 101\n      a=rtpmap:0 PCMU/8000\n      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-16\n"
            precondition(text.contains(pcmu))
            text = text.replacingOccurrences(of: pcmu, with: answerMedia.split(separator: "\n").map { "      \($0)\n" }.joined())
        }
        if let offerCheck {
            text = text.replacingOccurrences(
                of: "      AUTH_ACTION\n",
                with: "      <ereg regexp=\"\(offerCheck)\" search_in=\"body\" check_it=\"true\" assign_to=\"offer\"/>\n      AUTH_ACTION\n")
            text = text.replacingOccurrences(of: "VARIABLES", with: "VARIABLES,offer")
        }
        let earlySDP = """

                  v=0
                  o=callee 1 1 IN IP4 [local_ip]
                  s=-
                  c=IN IP4 [media_ip]
                  t=0 0
                  m=audio [media_port] RTP/AVP 0 101
                  a=rtpmap:0 PCMU/8000
                  a=rtpmap:101 telephone-event/8000

            """
        let nonce = "trunkline-test-nonce"
        let challengeBlock = """
              <recv request="INVITE" crlf="true"/>
            \(reply("407 Proxy Authentication Required", extra: "      Proxy-Authenticate: Digest realm=\"trunk.test\", nonce=\"\(nonce)\", algorithm=MD5"))
              <recv request="ACK" crlf="true"/>
            """
        var authCheck = ""
        if let challenge {
            // RFC 2617 without qop: MD5(MD5(user:realm:password):nonce:MD5(INVITE:uri)); the uri is the Request-URI.
            let md5 = { (text: String) in Insecure.MD5.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined() }
            let expected = md5("\(md5("\(challenge.user):trunk.test:\(challenge.password)")):\(nonce):\(md5("INVITE:sip:\(calledNumber)@127.0.0.1:\(challenge.port)"))")
            authCheck = "      <ereg regexp=\"response=.\(expected)\" search_in=\"hdr\" header=\"Proxy-Authorization:\" check_it=\"true\" assign_to=\"auth\"/>\n"
        }
        text = text.replacingOccurrences(of: "  CHALLENGE\n", with: challenge != nil ? challengeBlock + "\n" : "")
        text = text.replacingOccurrences(of: "      AUTH_ACTION\n", with: authCheck)
        text = text.replacingOccurrences(of: "VARIABLES", with: challenge != nil ? "caller,auth" : "caller")
        text = text.replacingOccurrences(of: "CALLER_CHECK", with: callerPattern)
        text = text.replacingOccurrences(of: "HEADER", with: callerHeader)
        text = text.replacingOccurrences(
            of: "  PROGRESS\n",
            with: earlyMedia
                ? reply("183 Session Progress", extra: "      Content-Type: application/sdp", body: earlySDP) + "\n"
                : reply("180 Ringing") + "\n")
        return try writeScenario(text, name: "callee")
    }

    /// One response the callee sends to the last request (tagged To, so it is in the callee's dialog).
    static func reply(_ status: String, extra: String = "", body: String = "", cseq: String = "[last_CSeq:]") -> String {
        """
          <send>
            <![CDATA[

              SIP/2.0 \(status)
              [last_Via:]
              [last_From:]
              [last_To:];tag=[pid]SIPpTag01[call_number]
              [last_Call-ID:]
              \(cseq)
        \(extra)
              Content-Length: [len]
        \(body)
            ]]>
          </send>
        """
    }

    /// A callee that rings and then refuses with `status`, or (nil) never answers and takes the CANCEL.
    static func refusingScenario(status: String?) throws -> String {
        let template = try String(contentsOf: Sipp.scenarios.appendingPathComponent("callee_refuses.xml.template"), encoding: .utf8)
        let refusal: String
        if let status {
            refusal = reply(status) + "\n  <recv request=\"ACK\" crlf=\"true\"/>"
        } else {
            refusal = """
                  <recv request="CANCEL" crlf="true">
                    <action><ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="cseq"/></action>
                  </recv>
                """ + "\n" + reply("200 OK") + "\n" + reply("487 Request Terminated", cseq: "CSeq: [$cseq] INVITE")
                + "\n  <recv request=\"ACK\" crlf=\"true\"/>"
        }
        return try writeScenario(template.replacingOccurrences(of: "  REFUSAL\n", with: refusal + "\n"), name: "refuses")
    }

    static func writeScenario(_ text: String, name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-\(name)-\(UUID().uuidString).xml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func trunk(profile: String = "generic", addresses: [String], extra: String = "") -> String {
        """
          - name: carrier
            profile: \(profile)
            allow: [127.0.0.0/8]
            outbound:
              addresses: [\(addresses.map { "\"\($0)\"" }.joined(separator: ", "))]
              health_check_interval_s: 0
        \(extra)
        """
    }

    static let calledNumber = "+15557654321"
    static let demoRoute = "  - name: demo\n    embedded: demo"

    /// `POST /v1/calls` on the gateway's admin API.
    static func placeCall(_ gateway: GatewayProcess, to: String = calledNumber, from: String = "+15551230000", ringTimeout: Int? = nil,
                          parameters: [String: String] = ["order_id": "o-1"]) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(gateway.adminPort)/v1/calls")!)
        request.httpMethod = "POST"
        request.setValue("Basic " + Data("\(account):test-token".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        var body: [String: Any] = ["trunk": "carrier", "to": to, "from": from, "route": "demo", "parameters": parameters]
        if let ringTimeout { body["ring_timeout_s"] = ringTimeout }
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }

    @Test func anAnsweredCallAnswersTheCarriersDigestChallengeAndPresentsCallerIDInPAssertedIdentity() async throws {
        let port = try FreePort.sipPort()
        let scenario = try Self.calleeScenario(
            challenge: ("trunkuser", "s3cret-pw", port), callerHeader: "P-Asserted-Identity:", callerPattern: "&lt;sip:\\+15551230000@")
        let callee = try await Sipp.serve(scenario: scenario, port: port, holdMilliseconds: 1500)
        defer { callee.stop() }
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: Self.trunk(profile: "telnyx", addresses: ["127.0.0.1:\(callee.port)"],
                               extra: "      username: trunkuser\n      password: s3cret-pw"),
            routes: Self.demoRoute)
        let (status, placed) = try await Self.placeCall(gateway)
        #expect(status == 201, "\(placed)")
        #expect(placed["status"] as? String == "ringing")
        #expect(placed["direction"] as? String == "outbound-api")

        let result = await callee.result()
        #expect(result.exitCode == 0, "the callee must see valid credentials and PAI: \(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["direction"] as? String == "outbound-api")
        #expect(record["outcome"] as? String == "answered")
        #expect(record["sip_status"] as? Int == 200)
        #expect(record["hangup_by"] as? String == "callee")
        #expect(record["codec"] as? String == "PCMU")
        // The demo agent's greeting went to the callee.
        #expect((record["packets_out"] as? Int ?? 0) > 20)
        #expect(!gateway.log.contains("s3cret-pw"), "the trunk password must never be logged")
    }

    /// Also: the trunk signs (STIR/SHAKEN), so the callee must see a well-formed SHAKEN Identity header.
    @Test func earlyMediaFlowsBeforeTheAnswerAndTheCLIFollowsTheCall() async throws {
        let identity = "eyJ[A-Za-z0-9_-]+\\.eyJ[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+;info=&lt;https://certs.example.test/sti.pem&gt;;alg=ES256;ppt=shaken"
        let scenario = try Self.calleeScenario(callerHeader: "Identity:", callerPattern: identity, earlyMedia: true)
        let callee = try await Sipp.serve(scenario: scenario, holdMilliseconds: 1000)
        defer { callee.stop() }
        let key = FileManager.default.temporaryDirectory.appendingPathComponent("trunkline-signing-\(UUID().uuidString).pem").path
        defer { try? FileManager.default.removeItem(atPath: key) }
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key]
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0)
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: Self.trunk(addresses: ["127.0.0.1:\(callee.port)"],
                               extra: "      sign: { key: \(key), x5u: \"https://certs.example.test/sti.pem\", attest: A }"),
            routes: Self.demoRoute)

        let cli = Process()
        cli.executableURL = URL(fileURLWithPath: GatewayProcess.binary)
        cli.arguments = ["call", "--config", gateway.directory.appendingPathComponent("trunkline.yaml").path,
                         "--trunk", "carrier", "--to", "+15557654321", "--from", "+15551230000", "--route", "demo"]
        let output = Pipe()
        cli.standardOutput = output
        try cli.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        cli.waitUntilExit()
        #expect(cli.terminationStatus == 0, "\(printed)")
        #expect(printed.contains(" ringing"), "\(printed)")
        #expect(printed.contains(" completed"), "\(printed)")

        let result = await callee.result()
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["outcome"] as? String == "answered")
        #expect(gateway.log.contains("early_media=true"))
    }

    @Test(arguments: [("486 Busy Here", "busy", 486), ("404 Not Found", "failed", 404), (nil, "no-answer", 487)])
    func aCallThatIsNotAnsweredEndsWithItsOutcome(refusal: String?, outcome: String, status: Int) async throws {
        let callee = try await Sipp.serve(scenario: try Self.refusingScenario(status: refusal))
        defer { callee.stop() }
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: Self.trunk(addresses: ["127.0.0.1:\(callee.port)"]), routes: Self.demoRoute)
        let (placedStatus, placed) = try await Self.placeCall(gateway, ringTimeout: 1)
        #expect(placedStatus == 201)
        let result = await callee.result()
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["outcome"] as? String == outcome)
        #expect(record["sip_status"] as? Int == status)
        #expect(record["answer_time"] == nil)

        // Twilio's call resource reports the same outcome.
        let sid = try #require(placed["sid"] as? String)
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(gateway.adminPort)/2010-04-01/Accounts/\(Self.account)/Calls/\(sid).json")!)
        request.setValue("Basic " + Data("\(Self.account):test-token".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        let (data, _) = try await URLSession.shared.data(for: request)
        let call = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(call["status"] as? String == outcome)
    }

    @Test func aDeadTerminationAddressFailsOverToTheNext() async throws {
        let callee = try await Sipp.serve(scenario: try Self.calleeScenario(callerPattern: "&lt;sip:\\+15551230000@"), holdMilliseconds: 500)
        defer { callee.stop() }
        let dead = try FreePort.udpPort()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: Self.trunk(addresses: ["127.0.0.1:\(dead)", "127.0.0.1:\(callee.port)"]), routes: Self.demoRoute)
        let (status, _) = try await Self.placeCall(gateway)
        #expect(status == 201)
        let result = await callee.result()
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["outcome"] as? String == "answered")
        #expect(gateway.log.contains("trying the next"))
    }

    @Test func aNumberWithSIPSyntaxIsRefusedBeforeAnythingIsSent() async throws {
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: Self.trunk(addresses: ["127.0.0.1:9"]), routes: Self.demoRoute)
        let (status, body) = try await Self.placeCall(gateway, to: "+1555\r\nX-Injected: 1")
        #expect(status == 400)
        #expect((body["message"] as? String ?? "").contains("not a dialable number"))
        // (Credentials are checked in AdminAPITests: URLSession here would wait on the Basic challenge.)

        // A campaign's call needs the compliance section (disclosure, opt-out): this gateway has none.
        let (campaignStatus, campaignBody) = try await Self.placeCall(gateway, to: "+15552340001", parameters: ["campaign_id": "june"])
        #expect(campaignStatus == 400)
        #expect((campaignBody["message"] as? String ?? "").contains("compliance"), "\(campaignBody)")
        #expect(try gateway.callRecords().isEmpty)
    }
}

extension OutboundCallTests {
    /// The trunk wants Opus first and SRTP: the offer carries both, and the callee's Opus + SDES answer becomes
    /// the call's media (the demo agent's greeting goes out SRTP-protected Opus).
    @Test func theOfferCarriesTheTrunksCodecsAndSRTPKeysAndTheAnswerIsUsed() async throws {
        let scenario = try Self.calleeScenario(
            callerPattern: ".*",
            offerCheck: "m=audio [0-9]+ RTP/SAVP 96 0 101 102.*a=rtpmap:96 opus/48000/2.*a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:[A-Za-z0-9+/]{40}",
            answerMedia: "m=audio [media_port] RTP/SAVP 96 102\na=rtpmap:96 opus/48000/2\na=fmtp:96 useinbandfec=1\n"
                + "a=rtpmap:102 telephone-event/48000\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk")
        let callee = try await Sipp.serve(scenario: scenario, holdMilliseconds: 1500)
        defer { callee.stop() }
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: Self.trunk(addresses: ["127.0.0.1:\(callee.port)"]) + "    codecs: [opus, pcmu]\n    srtp: required",
            routes: Self.demoRoute)
        let (status, placed) = try await Self.placeCall(gateway)
        #expect(status == 201, "\(placed)")
        let result = await callee.result()
        #expect(result.exitCode == 0, "the callee must see Opus and our SDES keys in the offer: \(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["outcome"] as? String == "answered")
        #expect((record["codec"] as? String)?.lowercased().hasPrefix("opus") == true, "\(record)")
        #expect(record["srtp"] as? String == "AES_CM_128_HMAC_SHA1_80")
        #expect((record["packets_out"] as? Int ?? 0) > 20)
        #expect(!gateway.log.contains("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk"), "SRTP keys are never logged")
    }
}

extension OutboundCallTests {
    /// The first address swallows INVITEs without a word (no ICMP error to hurry sofia): the trunk's invite timeout,
    /// not Timer B's 32 s, moves the call to the next.
    @Test func aSilentTerminationAddressIsLeftAfterTheInviteTimeout() async throws {
        let callee = try await Sipp.serve(scenario: try Self.calleeScenario(callerPattern: "&lt;sip:\\+15551230000@"), holdMilliseconds: 500)
        defer { callee.stop() }
        let blackHole = try UDPPeer()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: Self.trunk(addresses: ["127.0.0.1:\(blackHole.port)", "127.0.0.1:\(callee.port)"], extra: "      invite_timeout_ms: 800"),
            routes: Self.demoRoute)
        let started = Date()
        let (status, _) = try await Self.placeCall(gateway)
        #expect(status == 201)
        let result = await callee.result()
        #expect(result.exitCode == 0, "\(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["outcome"] as? String == "answered")
        #expect(gateway.log.contains("no response to INVITE within the trunk's invite timeout"))
        #expect(Date().timeIntervalSince(started) < 15, "failover must not wait for Timer B")
    }

    /// An address that never answers OPTIONS is marked down after the trunk's health-check timeout, not Timer F.
    @Test func aSilentAddressFailsItsHealthCheckWithinTheTimeout() async throws {
        let blackHole = try UDPPeer()
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10),
            trunks: """
                  - name: carrier
                    allow: [127.0.0.0/8]
                    outbound:
                      addresses: ["127.0.0.1:\(blackHole.port)"]
                      health_check_interval_s: 3600
                      health_check_timeout_ms: 500
                """,
            routes: Self.demoRoute)
        try await gateway.waitForLog("termination address down", timeout: 5)
        #expect(gateway.log.contains("status=408"))
    }
}
