import Foundation
import NIOCore
import Testing

@testable import Gateway

/// `secure_capture:` and `dtmf:` in the configuration and dialplan.
@Suite struct SecureCaptureConfigurationTests {
    let base = ConfigurationTests()

    @Test func aRouteSinkAndOnAnswerOverrideTheGlobalOnes() throws {
        let config = try base.load(
            """
            secure_capture:
              sink: { url: "https://tokenizer.example.com/v1", secret: "0123456789abcdef0123", retries: 1, timeout_ms: 2000 }
            trunks:
              - name: local
                allow: [127.0.0.0/8]
                dtmf: info
            dialplan: dialplan.yaml
            """,
            dialplan: """
                routes:
                  - name: pay
                    match: { exact: "pay" }
                    embedded: demo
                    dtmf: rfc4733
                    secure_capture:
                      reveal_last4: true
                      on_answer: { max_digits: 16, finish_key: "", card_number: true, inter_digit_timeout_ms: 3000 }
                  - name: other
                    embedded: demo
                """)
        #expect(config.trunks.first?.dtmf == .info)
        let pay = try #require(config.dialplan.routes.first)
        #expect(pay.dtmf == .rfc4733)
        #expect(config.dialplan.routes.last?.dtmf == nil)
        let policy = SecureCaptureSettings.policy(global: config.secureCapture, route: pay.secureCapture)
        #expect(policy.sink?.url == "https://tokenizer.example.com/v1")
        #expect(policy.sink?.retries == 1)
        #expect(policy.sink?.timeout == .seconds(2))
        #expect(policy.sink?.secret == Array("0123456789abcdef0123".utf8))
        #expect(policy.allowLast4)
        #expect(policy.onAnswer?.maxDigits == 16)
        #expect(policy.onAnswer?.finishKey == nil)
        #expect(policy.onAnswer?.cardNumber == true)
        #expect(policy.onAnswer?.interDigitTimeout == .seconds(3))
        let other = SecureCaptureSettings.policy(global: config.secureCapture, route: config.dialplan.routes.last?.secureCapture)
        #expect(other.sink != nil && !other.allowLast4 && other.onAnswer == nil)
    }

    @Test func badSettingsNameTheirLine() {
        base.expectError(
            "secure_capture:\n  sink: { url: \"http://tokenizer.example.com\", secret: \"0123456789abcdef\" }\n" + base.minimal,
            line: 2, containing: "sink url must be https")
        base.expectError(
            "secure_capture:\n  sink: { url: \"https://t.example.com\", secret: \"short\" }\n" + base.minimal,
            line: 2, containing: "at least 16 bytes")
        base.expectError(
            "secure_capture:\n  sink: { url: \"https://t.example.com\" }\n" + base.minimal, line: 2, containing: "exactly one of secret or secret_env")
        base.expectError(
            "secure_capture:\n  sink: { url: \"https://t.example.com\", secret_env: TRUNKLINE_TEST_UNSET_VARIABLE }\n" + base.minimal,
            line: 2, containing: "TRUNKLINE_TEST_UNSET_VARIABLE is not set")
        base.expectError("secure_capture:\n  on_answer: { max_digits: 4 }\n" + base.minimal, line: 2, containing: "unknown key 'on_answer'")
        base.expectError(
            base.minimal, dialplan: "routes:\n  - name: x\n    embedded: demo\n    secure_capture:\n      on_answer: { max_digits: 40 }\n",
            line: 5, containing: "outside 1...32")
        base.expectError(
            base.minimal, dialplan: "routes:\n  - name: x\n    embedded: demo\n    secure_capture:\n      on_answer: { max_digits: 4, min_digits: 6 }\n",
            line: 5, containing: "minDigits must be 1...maxDigits")
        base.expectError(base.minimal, dialplan: "routes:\n  - name: x\n    embedded: demo\n    dtmf: smoke\n", line: 4, containing: "unknown dtmf mode 'smoke'")
    }

    @Test func dtmfModesPickTheTransportAndWhatIsAccepted() {
        #expect(DTMFMode.auto.sendTransport(telephoneEvent: true) == .rfc4733)
        #expect(DTMFMode.auto.sendTransport(telephoneEvent: false) == .inband)
        #expect(DTMFMode.info.sendTransport(telephoneEvent: true) == .info)
        #expect(DTMFMode.auto.accepts(.info) && DTMFMode.auto.accepts(.rfc4733))
        #expect(!DTMFMode.info.accepts(.rfc4733) && DTMFMode.info.accepts(.info))
        #expect(!DTMFMode.inband.accepts(.info) && !DTMFMode.rfc4733.accepts(.info))
        #expect(!DTMFMode.info.answersTelephoneEvent && !DTMFMode.inband.answersTelephoneEvent && DTMFMode.rfc4733.answersTelephoneEvent)
    }
}
