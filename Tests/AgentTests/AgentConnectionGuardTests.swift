import Agent
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TrunklineTestSupport

/// Reaching the agent: a retry after a failed attempt, credentials on the upgrade, a crash mid-call.
@Suite("TwilioMediaStreamAgent: retries, upgrade credentials, crashes")
struct AgentConnectionGuardTests {
    @Test("an agent that refuses the first upgrade is reached on the second attempt, after the backoff")
    func retriesOnceAfterARefusal() async throws {
        let server = try await RecordingAgentServer.start(behavior: .refuseThenAccept(refusals: 1, status: 503))
        defer { Task { try await server.shutdown() } }
        let harness = try await AgentHarness.make(url: server.url(), attempts: 2, backoff: .milliseconds(150))
        let started = NIODeadline.now()
        try await harness.start()
        let connection = try await server.waitForConnection()
        _ = try await connection.waitForEvent(named: "start")
        #expect(NIODeadline.now() - started >= .milliseconds(150))
        #expect(try await server.waitForRequests(count: 2) == ["/stream", "/stream"])
        #expect(try await harness.run { agent, _ in agent.connectAttempts } == 2)
        #expect(harness.log.snapshot.outcomes.isEmpty)
    }

    @Test("every attempt refused: unreachable once, after the last attempt")
    func unreachableAfterTheLastAttempt() async throws {
        let server = try await RecordingAgentServer.start(behavior: .refuse(status: 503))
        defer { Task { try await server.shutdown() } }
        let harness = try await AgentHarness.make(url: server.url(), attempts: 3, backoff: .milliseconds(20))
        try await harness.start()
        let outcome = try await harness.log.waitForOutcome()
        guard case .failed(.unreachable(let detail)) = outcome else {
            Issue.record("expected unreachable, got \(outcome)")
            return
        }
        #expect(detail.contains("503") && detail.contains("attempt 3 of 3"), "\(detail)")
        #expect(server.requests.count == 3)
        #expect(try await harness.run { agent, _ in agent.connectAttempts } == 3)
    }

    @Test("a call that ends between attempts makes no further attempt and reports nothing")
    func stopWhileWaitingToRetry() async throws {
        let server = try await RecordingAgentServer.start(behavior: .refuse(status: 503))
        defer { Task { try await server.shutdown() } }
        // Long enough that the stop, sent as soon as the first request is seen, lands inside it even on a loaded
        // machine; proving that no attempt follows still means waiting past it.
        let backoff = TimeAmount.seconds(1)
        let harness = try await AgentHarness.make(url: server.url(), attempts: 2, backoff: backoff)
        try await harness.start()
        _ = try await server.waitForRequests(count: 1)
        try await harness.run { agent, _ in agent.stop(reason: "caller hung up") }
        try await harness.loop.scheduleTask(in: backoff * 2) {}.futureResult.get()
        #expect(server.tcpConnections == 1)
        #expect(harness.log.snapshot.calls.isEmpty)
    }

    @Test("the backoff doubles before each further attempt")
    func backoffDoubles() {
        let policy = AgentConnectPolicy(timeout: .seconds(1), attempts: 4, backoff: .milliseconds(500))
        #expect([2, 3, 4].map { policy.backoff(before: $0) } == [.milliseconds(500), .milliseconds(1000), .milliseconds(2000)])
    }

    @Test("a bearer token is sent on the upgrade, and an agent that wants one refuses a call without it (not retried)")
    func bearerToken() async throws {
        let server = try await RecordingAgentServer.start(authorize: { $0.headers["Authorization"] == ["Bearer s3cret-token"] })
        defer { Task { try await server.shutdown() } }

        let authorized = try await AgentHarness.make(url: server.url(), attempts: 2, authorization: .bearer(token: "s3cret-token"))
        try await authorized.start()
        let connection = try await server.waitForConnection()
        _ = try await connection.waitForEvent(named: "start")

        let anonymous = try await AgentHarness.make(url: server.url(), attempts: 2)
        try await anonymous.start()
        let outcome = try await anonymous.log.waitForOutcome()
        guard case .failed(.unreachable(let detail)) = outcome else {
            Issue.record("expected unreachable, got \(outcome)")
            return
        }
        #expect(detail.contains("401"))
        #expect(server.unauthorized == 1)
        #expect(try await anonymous.run { agent, _ in agent.connectAttempts } == 1)
    }

    @Test("X-Twilio-Signature is Twilio's HMAC-SHA1 of the stream URL, checked by the agent; a wrong key is refused")
    func twilioSignature() async throws {
        let authToken = "12345678901234567890123456789012"
        let server = try await RecordingAgentServer.start(authorize: { head in
            // The agent's side, written independently: ws:// + Host + request target, HMAC-SHA1, base64.
            let url = "ws://" + (head.headers["Host"].first ?? "") + head.uri
            let key = SymmetricKey(data: Array(authToken.utf8))
            let expected = Data(HMAC<Insecure.SHA1>.authenticationCode(for: Array(url.utf8), using: key)).base64EncodedString()
            return head.headers["X-Twilio-Signature"] == [expected]
        })
        defer { Task { try await server.shutdown() } }

        let signed = try await AgentHarness.make(url: server.url(path: "/media?route=bot"), authorization: .twilioSignature(authToken: authToken))
        try await signed.start()
        let connection = try await server.waitForConnection()
        #expect(connection.path == "/media?route=bot")
        _ = try await connection.waitForEvent(named: "start")

        let wrongKey = try await AgentHarness.make(url: server.url(), authorization: .twilioSignature(authToken: "not-the-token"))
        try await wrongKey.start()
        guard case .failed(.unreachable(let detail)) = try await wrongKey.log.waitForOutcome() else {
            Issue.record("a wrong signature must be refused")
            return
        }
        #expect(detail.contains("401"))
    }

    @Test("the signature matches the example in Twilio's security documentation")
    func twilioDocumentedVector() {
        let parameters = [
            (name: "CallSid", value: "CA1234567890ABCDE"), (name: "Caller", value: "+14158675309"), (name: "Digits", value: "1234"),
            (name: "From", value: "+14158675309"), (name: "To", value: "+18005551212"),
        ]
        let signature = TwilioRequestSignature.sign(
            url: "https://mycompany.com/myapp.php?foo=1&bar=2", parameters: parameters, authToken: "12345")
        #expect(signature == "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    }

    @Test("credentials never print")
    func credentialsAreRedacted() {
        for authorization in [AgentAuthorization.bearer(token: "s3cret-token"), .twilioSignature(authToken: "s3cret-token")] {
            #expect(!"\(authorization)".contains("s3cret"))
            #expect(!String(reflecting: authorization).contains("s3cret"))
        }
    }

    @Test("an agent whose connection is reset mid-call (a crash) fails the call mid-call; no hang-up is reported")
    func resetMidCallIsAFailure() async throws {
        let (server, harness, connection) = try await AgentHarness.streaming()
        defer { Task { try await server.shutdown() } }
        try await connection.abort()
        let outcome = try await harness.log.waitForOutcome()
        guard case .failed(.failedMidCall) = outcome else {
            Issue.record("expected failedMidCall, got \(outcome)")
            return
        }
        #expect(harness.log.snapshot.outcomes.count == 1)
    }
}
