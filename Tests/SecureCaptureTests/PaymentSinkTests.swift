import NIOCore
import Testing
import TrunklineTestSupport

@testable import SecureCapture

/// The webhook sink against a real local HTTP server that checks the signature.
@Suite(.serialized) struct PaymentSinkTests {
    static let client = PaymentSinkClient()
    let digits = CapturedDigits(ascii: Array("5392746103582741".utf8))

    func sink(_ server: PaymentSinkServer, change: (inout PaymentSinkConfiguration) -> Void = { _ in }) -> WebhookPaymentSink {
        var configuration = PaymentSinkConfiguration(url: server.url, secret: server.secret)
        configuration.allowHTTP = true
        configuration.backoff = .milliseconds(20)
        change(&configuration)
        return Self.client.sink(for: configuration)
    }

    @Test func aSignedSubmissionReachesTheSinkOnceAndItsTokenComesBack() async throws {
        let server = try await PaymentSinkServer.start()
        let outcome = await sink(server).submit(digits, callSid: "CA" + String(repeating: "a", count: 32), reference: "order \"7\"")
        #expect(outcome == PaymentSinkOutcome(kind: .accepted(token: "tok_test", reference: "sink-ref"), attempts: 1))
        let request = try #require(server.requests.first)
        #expect(server.requests.count == 1)
        #expect(request.signatureValid)
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.header("Idempotency-Key")?.hasPrefix("SC") == true)
        let json = try #require(request.json)
        #expect(json["digits"]?.string == "5392746103582741")
        #expect(json["reference"]?.string == "order \"7\"")
        #expect(json["count"]?.number == 16)
        #expect(json["id"]?.string == request.header("Idempotency-Key"))
        await server.shutdown()
    }

    @Test func serverErrorsAreRetriedWithTheSameIdempotencyKeyThenGiveUp() async throws {
        let recovering = try await PaymentSinkServer.start(replies: [.status(503, body: "{}"), .status(200, body: #"{"token":"tok_2"}"#)])
        let outcome = await sink(recovering).submit(digits, callSid: "CA1", reference: nil)
        #expect(outcome == PaymentSinkOutcome(kind: .accepted(token: "tok_2", reference: nil), attempts: 2))
        let keys = recovering.requests.map { $0.header("Idempotency-Key") }
        #expect(keys.count == 2 && keys[0] == keys[1])
        await recovering.shutdown()

        let down = try await PaymentSinkServer.start(replies: [.status(500, body: "{}")])
        let failed = await sink(down) { $0.retries = 2 }.submit(digits, callSid: "CA1", reference: nil)
        #expect(failed == PaymentSinkOutcome(kind: .unreachable("payment sink answered HTTP 500"), attempts: 3))
        await down.shutdown()
    }

    @Test func aRefusalIsNotRetriedAndAStallTimesOut() async throws {
        let refusing = try await PaymentSinkServer.start(replies: [.status(422, body: #"{"error":"bad"}"#)])
        let refused = await sink(refusing).submit(digits, callSid: "CA1", reference: nil)
        #expect(refused == PaymentSinkOutcome(kind: .refused("payment sink refused the submission: HTTP 422"), attempts: 1))
        await refusing.shutdown()

        let stalling = try await PaymentSinkServer.start(replies: [.stall])
        let stalled = await sink(stalling) { $0.timeout = .milliseconds(300); $0.retries = 1 }.submit(digits, callSid: "CA1", reference: nil)
        #expect(stalled == PaymentSinkOutcome(kind: .timedOut, attempts: 2))
        await stalling.shutdown()
    }

    @Test func anAnswerThatEchoesTheDigitsIsRefusedSoTheAgentNeverSeesThem() async throws {
        let echoing = try await PaymentSinkServer.start(replies: [.status(200, body: #"{"token":"tok_5392746103582741"}"#)])
        let outcome = await sink(echoing).submit(digits, callSid: "CA1", reference: nil)
        #expect(outcome == PaymentSinkOutcome(kind: .refused("payment sink answer repeats the captured digits; discarded"), attempts: 1))
        await echoing.shutdown()
    }

    @Test func configurationProblems() {
        var configuration = PaymentSinkConfiguration(url: "http://127.0.0.1:9/x", secret: Array("0123456789abcdef0123".utf8))
        #expect(configuration.problem() == "sink url must be https (http only with allow_http: true, for tests)")
        configuration.allowHTTP = true
        #expect(configuration.problem() == nil)
        configuration.secret = Array("short".utf8)
        #expect(configuration.problem() == "sink secret must be at least 16 bytes")
        #expect(PaymentSinkConfiguration(url: "tokenizer", secret: Array("0123456789abcdef".utf8)).problem() != nil)
    }
}
