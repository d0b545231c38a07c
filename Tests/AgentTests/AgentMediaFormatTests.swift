import Foundation
import NIOCore
import Testing
import TrunklineTestSupport

@testable import Agent

@Suite("Agent media formats in the start message")
struct AgentMediaFormatTests {
    let context = CallContext(
        callSid: "CA" + String(repeating: "1", count: 32), accountSid: "AC" + String(repeating: "0", count: 32),
        from: "+15551230001", to: "+15550100", trunk: "local", route: "bot", sipCallID: "abc")

    func start(_ format: AgentMediaFormat) throws -> JSONValue {
        var buffer = ByteBuffer()
        TwilioStreamMessage.writeStart(into: &buffer, sequenceNumber: 1, streamSid: "MZ1", context: context, mediaFormat: format)
        return try #require(JSONValue(parsing: String(buffer: buffer)))
    }

    @Test func twilioModeIsUnchangedAndL16AnnouncesItsRate() throws {
        var twilio = ByteBuffer()
        TwilioStreamMessage.writeStart(into: &twilio, sequenceNumber: 1, streamSid: "MZ1", context: context)
        #expect(String(buffer: twilio).hasSuffix(#""mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}"#))
        for rate in AgentMediaFormat.linear16Rates {
            let format = try start(.linear16(sampleRate: rate))["start"]?["mediaFormat"]
            #expect(format == .object(["encoding": .string("audio/l16"), "sampleRate": .number(Double(rate)), "channels": .number(1)]))
        }
    }
}
