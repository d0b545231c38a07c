import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TrunklineTestSupport

/// Campaigns run inside `trunkline serve` and driven over its admin API: the disclosure plays before the agent, an
/// opt-out (the callee's key or the agent's message) is in the ledger before the call ends and stops the next
/// dial, and two gateways on one PostgreSQL share a campaign without dialling anyone twice.
@Suite("Campaigns in the gateway", .serialized)
struct CampaignInGatewayTests {
    typealias Campaigns = CampaignEndToEndTests

    /// One admin API request with the test credentials; the JSON answer parsed.
    @discardableResult
    static func admin(_ gateway: GatewayProcess, _ method: String, _ path: String, json: Any? = nil, csv: String? = nil,
                      expect expected: Int = 200) async throws -> [String: Any] {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(gateway.adminPort)\(path)")!)
        request.httpMethod = method
        request.setValue("Basic " + Data("\(OutboundCallTests.account):test-token".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        if let json {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
        } else if let csv {
            request.setValue("text/csv", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(csv.utf8)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as! HTTPURLResponse).statusCode
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard status == expected else { throw HarnessError("\(method) \(path): \(status), expected \(expected): \(String(decoding: data, as: UTF8.self))") }
        return object
    }

    /// Polls the campaign's status (the store is what changes) until nothing is in flight or left to call.
    static func waitUntilSettled(_ gateway: GatewayProcess, _ campaign: String, timeout: Double = 60) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let status = try await admin(gateway, "GET", "/v1/campaigns/\(campaign)")
            if status["dialing"] as? Int == 0, status["remaining"] as? Int == 0 { return status }
            guard Date() < deadline else { throw HarnessError("campaign \(campaign) not settled in \(timeout)s: \(status)") }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// A callee that answers, optionally presses `key` (SIP INFO) after `pressAfter` ms, and waits for the
    /// gateway's BYE: the call must be ended by the gateway, not by the callee.
    static func calleeAwaitingBye(press key: Character? = nil, pressAfter milliseconds: Int = 1500, calls: Int = 1) async throws -> Sipp.Running {
        let path = try OutboundCallTests.calleeScenario(callerPattern: "&lt;sip:\\+15552340000@")
        var text = try String(contentsOfFile: path, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: path)
        let tail = text.range(of: "  <pause/>")!.lowerBound..<text.range(of: "  <label id=\"end\"/>")!.lowerBound
        var script = ""
        if let key {
            script += """
                  <pause milliseconds="\(milliseconds)"/>
                  <send retrans="500">
                    <![CDATA[

                      INFO [$remote_contact] SIP/2.0
                      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
                      From: <sip:callee@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
                      To: [$remote_from]
                      [last_Call-ID:]
                      CSeq: 1 INFO
                      Contact: <sip:callee@[local_ip]:[local_port]>
                      Max-Forwards: 70
                      Content-Type: application/dtmf-relay
                      Content-Length: [len]

                Signal=\(key)
                Duration=160
                    ]]>
                  </send>
                  <recv response="200"/>

                """
        }
        script += """
              <recv request="BYE" crlf="true"/>
              <send>
                <![CDATA[

                  SIP/2.0 200 OK
                  [last_Via:]
                  [last_From:]
                  [last_To:]
                  [last_Call-ID:]
                  [last_CSeq:]
                  Content-Length: 0

                ]]>
              </send>

            """
        text.replaceSubrange(tail, with: script)
        if key == nil {
            // sipp refuses variables that are set but never used: the BYE that used them is now the gateway's.
            text = text.replacingOccurrences(of: #"<Reference variables="caller"/>"#, with: #"<Reference variables="caller,remote_from,remote_contact"/>"#)
        }
        return try await Sipp.serve(scenario: try OutboundCallTests.writeScenario(text, name: "callee-bye"), calls: calls)
    }

    /// A gateway whose compliance store is `store`, with the national DNC list imported (the gate refuses every
    /// dial without a fresh one), consents for `numbers` imported and a campaign `name` holding them.
    static func gatewayWithCampaign(
        _ name: String, numbers: [String], callee: Sipp.Running, store: String, key: String, routes: String = OutboundCallTests.demoRoute,
        route: String = "demo", instance: String = "gw-test", createCampaign: Bool = true, concurrency: Int = 2
    ) async throws -> GatewayProcess {
        let gateway = try await GatewayProcess(
            rtpPorts: try FreePort.udpRange(count: 10), trunks: OutboundCallTests.trunk(addresses: ["127.0.0.1:\(callee.port)"]),
            routes: routes, extraConfig: Campaigns.complianceConfig(store: store, key: key, instance: instance))
        guard createCampaign else { return gateway }
        let national = gateway.directory.appendingPathComponent("national.txt")
        try "# empty national extract\n".write(to: national, atomically: true, encoding: .utf8)
        let (status, output) = try Campaigns.trunkline(
            ["dnc", "import", national.path, "--list-date", Date().formatted(.iso8601.year().month().day())], gateway: gateway)
        try #require(status == 0, "\(output)")
        let zone = Campaigns.afternoonZone()
        let consents = try await admin(gateway, "POST", "/v1/consents", csv: Campaigns.consentRows(numbers, zone: zone))
        #expect(consents["imported"] as? Int == numbers.count, "\(consents)")
        try await Self.createCampaign(name, numbers: numbers, on: gateway, route: route, concurrency: concurrency)
        return gateway
    }

    static func createCampaign(_ name: String, numbers: [String], on gateway: GatewayProcess, route: String = "demo",
                               concurrency: Int = 2) async throws {
        let created = try await admin(gateway, "POST", "/v1/campaigns", json: [
            "name": name, "purpose": "informational", "seller": "Acme Clinic", "trunk": "carrier", "route": route,
            "from": "+15552340000", "concurrency": concurrency, "cps": 5,
        ], expect: 201)
        #expect(created["state"] as? String == "paused")
        let contacts = try await admin(gateway, "POST", "/v1/campaigns/\(name)/contacts",
                                       csv: Campaigns.contactRows(numbers, zone: Campaigns.afternoonZone()))
        #expect(contacts["imported"] as? Int == numbers.count, "\(contacts)")
    }

    @Test func theOptOutKeyRevokesConsentBeforeTheCallEndsAndTheNextCampaignSkipsTheNumber() async throws {
        let number = "+12125550111"
        let callee = try await Self.calleeAwaitingBye(press: "9")
        defer { callee.stop() }
        let key = try Campaigns.makeLedgerKey()
        defer { try? FileManager.default.removeItem(atPath: key) }
        let gateway = try await Self.gatewayWithCampaign("reminders", numbers: [number], callee: callee, store: "compliance.db", key: key)

        let started = try await Self.admin(gateway, "POST", "/v1/campaigns/reminders/start")
        #expect(started["state"] as? String == "running" && started["running_here"] as? Bool == true, "\(started)")
        let result = await callee.result()
        #expect(result.exitCode == 0, "the gateway must end the call after the opt-out: \(result.output)")
        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["hangup_by"] as? String == "gateway" && record["hangup_reason"] as? String == "callee opted out", "\(record)")
        let status = try await Self.waitUntilSettled(gateway, "reminders")
        #expect(status["dialled"] as? Int == 1 && status["answered"] as? Int == 1, "\(status)")

        let entries = try Campaigns.ledger(of: number, gateway: gateway)
        let kinds = entries.compactMap { $0["kind"] as? String }
        let revoked = try #require(kinds.firstIndex(of: "consent.revoked"), "\(kinds)")
        let outcome = try #require(kinds.firstIndex(of: "call.outcome"))
        #expect(revoked < outcome, "the revocation is stored before the call ends: \(kinds)")
        let body = Campaigns.body(entries[revoked])
        #expect(body["source"] as? String == "dtmf_opt_out")
        #expect(body["call_sid"] as? String == record["call_sid"] as? String)
        #expect(kinds.contains("dnc.added"))
        // The key press went to the opt-out, not to the agent.
        #expect(record["digits_received"] as? Int == 0)

        // The next campaign, started from the command line with its live display (plain lines off a terminal).
        try await Self.createCampaign("follow-up", numbers: [number], on: gateway)
        let (watched, progress) = try Campaigns.trunkline(["campaign", "start", "follow-up", "--watch"], gateway: gateway)
        #expect(watched == 0, "\(progress)")
        let lastLine = progress.split(separator: "\n").last.map(String.init) ?? ""
        #expect(lastLine.contains("remaining 0") && lastLine.contains("dialled 0") && lastLine.contains("consent_revoked 1"), "\(progress)")
        #expect(!progress.contains("\u{1B}["), "no terminal redraws into a pipe")
        let next = try await Self.admin(gateway, "GET", "/v1/campaigns/follow-up")
        #expect(next["dialled"] as? Int == 0 && (next["refused"] as? [String: Int])?["consent_revoked"] == 1, "\(next)")
        let (paused, pauseOutput) = try Campaigns.trunkline(["campaign", "pause", "follow-up"], gateway: gateway)
        #expect(paused == 0 && pauseOutput.contains("paused"), "\(pauseOutput)")
        #expect(try await Self.admin(gateway, "GET", "/v1/campaigns/follow-up")["state"] as? String == "paused")
        let (verify, output) = try Campaigns.trunkline(["consent", "verify"], gateway: gateway)
        #expect(verify == 0, "\(output)")
    }

    @Test func theAgentsOptOutIsStoredAndAnsweredAndTheDisclosurePlaysBeforeTheAgent() async throws {
        let number = "+12125550112"
        let agent = try await RecordingAgentServer.start()
        let callee = try await Self.calleeAwaitingBye()
        defer { callee.stop() }
        let key = try Campaigns.makeLedgerKey()
        defer { try? FileManager.default.removeItem(atPath: key) }
        let gateway = try await Self.gatewayWithCampaign(
            "reminders", numbers: [number], callee: callee, store: "compliance.db", key: key,
            routes: "  - name: bot\n    agent: { url: \"\(agent.url(path: "/ws"))\" }", route: "bot")

        _ = try await Self.admin(gateway, "POST", "/v1/campaigns/reminders/start")
        let connection = try await agent.waitForConnection(timeout: .seconds(20))
        let start = try await connection.waitForEvent(named: "start")
        let connectedAt = Date()
        #expect(start["start"]?["customParameters"]?["campaign_id"]?.string == "reminders")
        try await connection.sendText(#"{"event":"optOut","optOut":{"reason":"callee said: take me off your list"}}"#)
        let answer = try await connection.waitForEvent(named: "optOut", timeout: .seconds(10))
        #expect(answer["optOut"] == .object(["status": .string("recorded"), "source": .string("agent"), "hangup": .bool(true)]))
        _ = try await connection.waitForEvent(named: "stop", timeout: .seconds(10))
        let result = await callee.result()
        #expect(result.exitCode == 0, "\(result.output)")
        try await agent.shutdown()

        let record = try #require(try await gateway.waitForCallRecords(1).first)
        #expect(record["hangup_reason"] as? String == "callee opted out", "\(record)")
        // The agent is connected only once the disclosure (digit-1.wav) has played out.
        let answerTime = try #require((record["answer_time"] as? String).flatMap {
            try? Date($0, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true))
        })
        let prompt = try #require(FileManager.default.attributesOfItem(
            atPath: GatewayProcess.packageRoot.appendingPathComponent("prompts/digit-1.wav").path)[.size] as? Int)
        let disclosureSeconds = Double(prompt - 44) / 16_000
        #expect(connectedAt.timeIntervalSince(answerTime) >= disclosureSeconds, "agent started \(connectedAt.timeIntervalSince(answerTime)) s after the answer")
        let log = gateway.log
        let disclosureLine = try #require(log.range(of: "playing the campaign disclosure"))
        let agentLine = try #require(log.range(of: "call answered"))
        #expect(disclosureLine.lowerBound < agentLine.lowerBound)

        _ = try await Self.waitUntilSettled(gateway, "reminders")
        let entries = try Campaigns.ledger(of: number, gateway: gateway)
        let kinds = entries.compactMap { $0["kind"] as? String }
        #expect(kinds.filter { $0 != "consent.granted" && $0 != "dnc.added" }
            == ["dial.decision", "disclosure.played", "consent.revoked", "call.outcome"], "\(kinds)")
        let revoked = Campaigns.body(entries.first { $0["kind"] as? String == "consent.revoked" })
        #expect(revoked["source"] as? String == "agent_opt_out")
        #expect(revoked["detail"] as? String == "callee said: take me off your list")
    }

    /// `sqlite3 FILE SQL` (Debian's sqlite3): a person with the database file, outside the gateway.
    static func sqlite(_ path: String, _ statements: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [path, statements]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HarnessError("sqlite3 \(statements): \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func killedMidCampaignTheRestartedGatewayDialsNobodyTwiceAndTheLedgerCatchesAnEdit() async throws {
        let numbers = (0..<6).map { "+1212555\(String(format: "%04d", 140 + $0))" }
        // Calls hold 2 s, so the kill finds some in flight; their callee-side dialogs then time out unanswered.
        let callee = try await Sipp.serve(
            scenario: try OutboundCallTests.calleeScenario(callerPattern: "&lt;sip:\\+15552340000@"), calls: numbers.count,
            holdMilliseconds: 2000, timeoutSeconds: 90)
        defer { callee.stop() }
        let key = try Campaigns.makeLedgerKey()
        defer { try? FileManager.default.removeItem(atPath: key) }
        let gateway = try await Self.gatewayWithCampaign("crash", numbers: numbers, callee: callee, store: "compliance.db", key: key)
        let database = gateway.directory.appendingPathComponent("compliance.db").path

        _ = try await Self.admin(gateway, "POST", "/v1/campaigns/crash/start")
        try await gateway.waitForLog("playing the campaign disclosure", timeout: 30)
        gateway.kill9()
        let inFlight = Int(try Self.sqlite(database, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL")) ?? 0
        #expect(inFlight > 0, "the kill should leave calls in flight")

        try await gateway.restart()
        try await gateway.waitForLog("closed interrupted attempts after restart")
        let status = try await Self.waitUntilSettled(gateway, "crash", timeout: 90)
        #expect(status["dialled"] as? Int == numbers.count, "every contact is dialled once: \(status)")
        let finished = status["finished"] as? [String: Int] ?? [:]
        #expect(finished["interrupted"] == inFlight && finished["answered", default: 0] + inFlight == numbers.count, "\(status)")
        #expect(try Self.sqlite(database, "SELECT number FROM attempts GROUP BY number HAVING COUNT(*) > 1").isEmpty)
        let (verify, output) = try Campaigns.trunkline(["consent", "verify"], gateway: gateway)
        #expect(verify == 0, "\(output)")
        gateway.stop()

        // Someone edits one outcome by hand (after dropping the trigger that refuses it): verify names the entry.
        let edited = try Self.sqlite(database, "SELECT MIN(seq) FROM ledger WHERE kind = 'call.outcome'")
        _ = try Self.sqlite(database, "DROP TRIGGER ledger_no_update; UPDATE ledger SET body = replace(body, '\"outcome\":\"', '\"outcome\":\"not-') WHERE seq = \(edited)")
        let (tampered, tamperedOutput) = try Campaigns.trunkline(["consent", "verify"], gateway: gateway)
        #expect(tampered == 1 && tamperedOutput.contains("entry \(edited): edited"), "\(tamperedOutput)")
    }

    @Test func twoGatewaysOnOnePostgreSQLShareACampaignWithoutDoubleDials() async throws {
        let numbers = (0..<6).map { "+1212555\(String(format: "%04d", 120 + $0))" }
        // Each call holds ~1.5 s and each gateway takes one at a time, so both gateways get a share.
        let callee = try await Sipp.serve(
            scenario: try OutboundCallTests.calleeScenario(callerPattern: "&lt;sip:\\+15552340000@"), calls: numbers.count,
            holdMilliseconds: 1500)
        defer { callee.stop() }
        let key = try Campaigns.makeLedgerKey()
        defer { try? FileManager.default.removeItem(atPath: key) }
        try await Campaigns.withStore(.postgres) { store in
            let first = try await Self.gatewayWithCampaign("shared", numbers: numbers, callee: callee, store: store, key: key,
                                                           instance: "gw-a", concurrency: 1)
            let second = try await Self.gatewayWithCampaign("shared", numbers: numbers, callee: callee, store: store, key: key,
                                                            instance: "gw-b", createCampaign: false)
            async let startedFirst = Self.admin(first, "POST", "/v1/campaigns/shared/start")
            async let startedSecond = Self.admin(second, "POST", "/v1/campaigns/shared/start")
            #expect(try await startedFirst["running_here"] as? Bool == true)
            #expect(try await startedSecond["running_here"] as? Bool == true)
            let status = try await Self.waitUntilSettled(first, "shared", timeout: 90)
            #expect(status["dialled"] as? Int == numbers.count && status["answered"] as? Int == numbers.count, "\(status)")
            let result = await callee.result()
            #expect(result.exitCode == 0, "\(result.output)")

            let dialledFirst = try first.callRecords().compactMap { $0["to"] as? String }
            let dialledSecond = try second.callRecords().compactMap { $0["to"] as? String }
            let all = dialledFirst + dialledSecond
            #expect(all.count == numbers.count && Set(all) == Set(numbers), "a contact was dialled twice or not at all: \(all)")
            #expect(!dialledFirst.isEmpty && !dialledSecond.isEmpty, "both gateways dial: \(dialledFirst) / \(dialledSecond)")
            let (verify, output) = try Campaigns.trunkline(["consent", "verify"], gateway: second)
            #expect(verify == 0, "\(output)")
        }
    }
}
