import Foundation
import NIOCore
import NIOWebSocket
import Testing
import TrunklineTestSupport

@testable import Agent
import Media

@Suite("Message building without Foundation")
struct TwilioStreamMessagesTests {
    @Test("base64 matches Foundation for every length and remainder", arguments: [0, 1, 2, 3, 4, 5, 159, 160, 161, 320])
    func base64(length: Int) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var buffer = ByteBuffer()
        bytes.withUnsafeBytes { buffer.writeBase64($0) }
        #expect(String(buffer: buffer) == Data(bytes).base64EncodedString())
    }

    @Test("decimals", arguments: [0, 7, 10, 20, 1234567890, Int.max])
    func decimal(value: Int) {
        var buffer = ByteBuffer()
        buffer.writeDecimal(value)
        #expect(String(buffer: buffer) == String(value))
    }

    @Test("JSON strings round-trip through a JSON parser")
    func jsonString() throws {
        let samples = ["", "plain", "\"", "\\", "\u{0}\u{1}\u{1F}\u{7F}", "\n\r\t\u{8}\u{C}", "é📞", "</script>", "a\"b\\c"]
        for sample in samples {
            var buffer = ByteBuffer()
            buffer.writeJSONString(sample)
            let parsed = try #require(JSONValue(parsing: "[" + String(buffer: buffer) + "]"), "\(String(buffer: buffer))")
            #expect(parsed[0]?.string == sample)
        }
        var buffer = ByteBuffer()
        buffer.writeJSONString("\u{1}\n\"")
        #expect(String(buffer: buffer) == #""\u0001\n\"""#)
    }

    @Test("frames built in place are masked client frames a decoder accepts", arguments: [0, 5, 125, 126, 400, 70000])
    func clientFrame(payloadLength: Int) throws {
        let text = String(repeating: "z", count: payloadLength)
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        WebSocketClientFrame.begin(&buffer)
        buffer.writeString(text)
        WebSocketClientFrame.finish(&buffer, opcode: .text)

        // Parsed by the RFC 6455 §5.2 layout, independently of the builder.
        let bytes = Array(buffer.readableBytesView)
        #expect(bytes[0] == 0x81)  // FIN, text
        #expect(bytes[1] & 0x80 == 0x80)  // masked
        var index = 2
        var length = Int(bytes[1] & 0x7F)
        if length == 126 {
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            index = 4
        } else if length == 127 {
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            index = 10
        }
        #expect(length == payloadLength)
        let key = Array(bytes[index..<index + 4])
        index += 4
        #expect(bytes.count == index + payloadLength)
        let unmasked = bytes[index...].enumerated().map { $0.element ^ key[$0.offset & 3] }
        #expect(String(decoding: unmasked, as: UTF8.self) == text)
        if payloadLength > 0 { #expect(Array(bytes[index...]) != Array(text.utf8) || key == [0, 0, 0, 0]) }
    }

    @Test("stream ids are MZ + 32 lowercase hex and differ")
    func identifiers() {
        let a = TwilioIdentifier.make(prefix: "MZ")
        let b = TwilioIdentifier.make(prefix: "MZ")
        #expect(TwilioIdentifier.isValid(a, prefix: "MZ"))
        #expect(a != b)
        #expect(!TwilioIdentifier.isValid("MZ" + String(repeating: "A", count: 32), prefix: "MZ"))
        #expect(!TwilioIdentifier.isValid("MZ" + String(repeating: "a", count: 31), prefix: "MZ"))
    }

    @Test("the spandsp μ-law codec agrees with the textbook one")
    func muLawAgreesWithReference() {
        for byte in UInt8.min...UInt8.max {
            #expect(MuLawReference.decode(byte) == ulawDecode(byte), "byte \(byte)")
        }
        let samples: [Int16] = [0, 1, -1, 100, -100, 8000, -8000, 32767, -32768, 12345, -12345]
        for sample in samples {
            #expect(MuLawReference.encode(sample) == ulawEncode(sample), "sample \(sample)")
        }
    }
}

@Suite("AgentURL")
struct AgentURLTests {
    @Test func parsesWS() throws {
        let url = try AgentURL(parsing: "ws://bot.example.com:7860/ws?token=abc")
        #expect(url.host == "bot.example.com")
        #expect(url.port == 7860)
        #expect(url.path == "/ws?token=abc")
        #expect(url.hostHeader == "bot.example.com:7860")

        let bare = try AgentURL(parsing: " WS://10.0.0.5 ")
        #expect(bare.port == 80)
        #expect(bare.path == "/")
        #expect(bare.hostHeader == "10.0.0.5")

        let v6 = try AgentURL(parsing: "ws://[::1]:9000/x")
        #expect(v6.host == "::1")
        #expect(v6.hostHeader == "[::1]:9000")
    }

    @Test func rejectsWSSWithAClearError() {
        #expect(throws: AgentURLError(.unsupportedScheme, url: "")) { try AgentURL(parsing: "wss://bot.example.com/ws") }
        do {
            _ = try AgentURL(parsing: "wss://bot.example.com/ws")
        } catch {
            #expect(error.description.contains("wss"))
            #expect(error.description.contains("not supported yet"))
        }
    }

    @Test(arguments: [
        ("http://x/ws", AgentURLError.Code.unsupportedScheme), ("bot:7860/ws", .missingScheme),
        ("ws://:80/ws", .invalidHost), ("ws://x:0/", .invalidPort), ("ws://x:70000/", .invalidPort),
        ("ws://x:abc/", .invalidPort), ("ws://user@x/", .invalid), ("ws://x/a#b", .invalid), ("ws://[::1/", .invalidHost),
    ])
    func rejects(url: String, code: AgentURLError.Code) {
        #expect(throws: AgentURLError(code, url: url)) { try AgentURL(parsing: url) }
    }
}

/// spandsp's μ-law, through the gateway's own codec entry point.
private func ulawDecode(_ byte: UInt8) -> Int16 {
    var output: [Int16] = [0]
    [byte].withUnsafeBytes { input in
        output.withUnsafeMutableBufferPointer { G711Law.muLaw.decode(input, into: $0) }
    }
    return output[0]
}

private func ulawEncode(_ sample: Int16) -> UInt8 {
    var output: [UInt8] = [0]
    [sample].withUnsafeBufferPointer { input in
        output.withUnsafeMutableBufferPointer { G711Law.muLaw.encode(input, into: $0) }
    }
    return output[0]
}
