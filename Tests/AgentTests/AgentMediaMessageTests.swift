import Foundation
import Testing

@testable import Agent

/// The fast reader of agent `media` messages must agree with the general path (JSONDecoder + Data(base64Encoded:))
/// on every message it takes, and leave every other message to it.
@Suite struct AgentMediaMessageTests {
    func fast(_ text: String) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: text.utf8.count)
        let bytes = Array(text.utf8)
        let count = bytes.withUnsafeBytes { json in
            output.withUnsafeMutableBytes { AgentMediaMessage.decodePayload(json, into: $0) }
        }
        return count.map { Array(output[..<$0]) }
    }

    struct General: Decodable {
        struct Media: Decodable { var payload: String? }
        var event: String
        var media: Media?
    }

    /// What the general path plays for `text`, or nil when it plays nothing.
    func general(_ text: String) -> [UInt8]? {
        guard let message = try? JSONDecoder().decode(General.self, from: Data(text.utf8)), message.event == "media",
              let payload = message.media?.payload, let data = Data(base64Encoded: payload) else { return nil }
        return Array(data)
    }

    @Test(arguments: [
        #"{"event":"media","streamSid":"MZ1","media":{"payload":"AAECAwQF/w=="}}"#,
        #"{"event": "media", "streamSid": "MZ1", "media": {"payload": "//79/A=="}}"#,  // Pipecat's json.dumps spacing
        #"{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"AQID"},"streamSid":"MZ1"}"#,
        #"{"media":{"payload":"AQI="},"event":"media","extra":[1,-2.5e3,true,null,{"a":[]}]}"#,
        #"{"event":"media","media":{"payload":""}}"#,
    ])
    func mediaMessagesDecodeAsTheGeneralPathDoes(_ text: String) throws {
        let decoded = try #require(fast(text))
        #expect(decoded == general(text))
    }

    @Test(arguments: [
        #"{"event":"mark","streamSid":"MZ1","mark":{"name":"x"}}"#,  // another event
        #"{"event":"media","media":{"payload":"AQI"}}"#,  // not a multiple of 4
        #"{"event":"media","media":{"payload":"AQ=I"}}"#,  // padding inside
        #"{"event":"media","media":{"payload":"AQ\u002FI"}}"#,  // an escape: left to JSONDecoder
        #"{"event":"media","media":{"payload":"AQI="}"#,  // unterminated
        #"{"event":"media","media":{"payload":"AQI="}} x"#,  // trailing garbage
        #"{"event":"media","media":{"payload":"AQI="},"n":01}"#,  // malformed number
        #"{"event":"media"}"#,  // no payload
        #"["event","media"]"#,
    ])
    func everythingElseTakesTheGeneralPath(_ text: String) {
        #expect(fast(text) == nil)
    }

    @Test func tooSmallAnOutputIsRefused() {
        let bytes = Array(#"{"event":"media","media":{"payload":"AAECAwQF"}}"#.utf8)
        var output = [UInt8](repeating: 0, count: 5)
        let count = bytes.withUnsafeBytes { json in
            output.withUnsafeMutableBytes { AgentMediaMessage.decodePayload(json, into: $0) }
        }
        #expect(count == nil)
    }
}
