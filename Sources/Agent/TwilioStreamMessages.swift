#if canImport(Glibc)
import Glibc  // arc4random_buf: glibc 2.36 and later
#elseif canImport(Darwin)
import Darwin
#endif
import Media
import NIOCore
import NIOWebSocket
import SecureCapture

// MARK: - Identifiers

/// Twilio-style identifiers: a two-letter prefix and 32 lowercase hex digits (`MZ…` streams, `CA…` calls).
public enum TwilioIdentifier {
    /// A fresh random id, e.g. `make(prefix: "MZ")` → `MZ` + 32 hex digits.
    public static func make(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + hex(generator.next() as UInt64) + hex(generator.next() as UInt64)
    }

    /// Whether `value` is `prefix` followed by exactly 32 lowercase hex digits.
    public static func isValid(_ value: String, prefix: String) -> Bool {
        guard value.hasPrefix(prefix) else { return false }
        let digits = value.utf8.dropFirst(prefix.utf8.count)
        return digits.count == 32 && digits.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

// MARK: - JSON and base64 straight into a ByteBuffer

extension ByteBuffer {
    /// Writes `value` as a JSON string literal, quotes included (RFC 8259 §7: `"` `\` and C0 controls escaped).
    mutating func writeJSONString(_ value: String) {
        self.writeInteger(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var runStart = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if runStart < i { self.writeBytes(UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                runStart = i + 1
                switch byte {
                case UInt8(ascii: "\""): self.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): self.writeStaticString("\\\\")
                case 0x0A: self.writeStaticString("\\n")
                case 0x0D: self.writeStaticString("\\r")
                case 0x09: self.writeStaticString("\\t")
                case 0x08: self.writeStaticString("\\b")
                case 0x0C: self.writeStaticString("\\f")
                default:
                    self.writeStaticString("\\u00")
                    self.writeInteger(hexDigit(byte >> 4))
                    self.writeInteger(hexDigit(byte & 0x0F))
                }
            }
            if runStart < utf8.count { self.writeBytes(UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
        self.writeInteger(UInt8(ascii: "\""))
    }

    /// Writes a non-negative integer in decimal, without going through `String`.
    mutating func writeDecimal(_ value: Int) {
        precondition(value >= 0)
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            self.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(20 - count)...]))
        }
    }

    /// Writes `bytes` as standard base64 (RFC 4648 §4, with padding).
    mutating func writeBase64(_ bytes: UnsafeRawBufferPointer) {
        let outputCount = (bytes.count + 2) / 3 * 4
        guard outputCount > 0 else { return }
        self.writeWithUnsafeMutableBytes(minimumWritableBytes: outputCount) { out in
            var o = 0
            var i = 0
            while i + 3 <= bytes.count {
                let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                out[o] = base64Alphabet[Int(v >> 18)]
                out[o + 1] = base64Alphabet[Int(v >> 12 & 0x3F)]
                out[o + 2] = base64Alphabet[Int(v >> 6 & 0x3F)]
                out[o + 3] = base64Alphabet[Int(v & 0x3F)]
                i += 3
                o += 4
            }
            let remaining = bytes.count - i
            if remaining > 0 {
                let v = UInt32(bytes[i]) << 16 | (remaining == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
                out[o] = base64Alphabet[Int(v >> 18)]
                out[o + 1] = base64Alphabet[Int(v >> 12 & 0x3F)]
                out[o + 2] = remaining == 2 ? base64Alphabet[Int(v >> 6 & 0x3F)] : UInt8(ascii: "=")
                out[o + 3] = UInt8(ascii: "=")
            }
            return outputCount
        }
    }
}

private func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}

private let base64Alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

// MARK: - Client frames built in place

/// Builds masked client WebSocket frames (RFC 6455 §5.2/§5.3) in one reused buffer, so the hot path writes a
/// complete frame without a `WebSocketFrame`, the frame encoder's copy-on-mask, or an allocation.
///
/// Use: `begin(&buffer)`, write the payload, `finish(&buffer, opcode:)`; the buffer's readable bytes are then the
/// frame, ready for the raw writer below the frame encoder.
enum WebSocketClientFrame {
    /// Largest header: 2 bytes, 8-byte extended length, 4-byte masking key.
    static let headroom = 14

    static func begin(_ buffer: inout ByteBuffer) {
        buffer.clear()
        buffer.writeRepeatingByte(0, count: headroom)
        buffer.moveReaderIndex(forwardBy: headroom)
    }

    static func finish(_ buffer: inout ByteBuffer, opcode: WebSocketOpcode, key: WebSocketMaskingKey = .random()) {
        let length = buffer.readableBytes
        let lengthBytes = length <= 125 ? 0 : (length <= 0xFFFF ? 2 : 8)
        let start = buffer.readerIndex - (2 + lengthBytes + 4)
        precondition(start >= 0, "WebSocketClientFrame.begin not called")

        var index = start
        index += buffer.setInteger(0x80 | opcode.rawOpcodeValue, at: index)  // FIN + opcode
        switch lengthBytes {
        case 0: index += buffer.setInteger(0x80 | UInt8(length), at: index)
        case 2:
            index += buffer.setInteger(UInt8(0x80 | 126), at: index)
            index += buffer.setInteger(UInt16(length), at: index)
        default:
            index += buffer.setInteger(UInt8(0x80 | 127), at: index)
            index += buffer.setInteger(UInt64(length), at: index)
        }
        index += buffer.setBytes(key, at: index)
        assert(index == buffer.readerIndex)

        buffer.withUnsafeMutableReadableBytes { mask($0, key: key) }
        buffer.moveReaderIndex(to: start)
    }

    /// XORs `payload` with the repeated key, eight bytes at a time.
    static func mask(_ payload: UnsafeMutableRawBufferPointer, key: WebSocketMaskingKey) {
        let keyBytes = (key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3])
        let key8 = withUnsafeBytes(of: keyBytes) { $0.loadUnaligned(as: UInt64.self) }
        var i = 0
        while i + 8 <= payload.count {
            payload.storeBytes(of: payload.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ key8, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < payload.count {
            payload[i] ^= key[i & 3]
            i += 1
        }
    }
}

/// Masking keys for the frames a stream sends, drawn from the system's CSPRNG 64 at a time: RFC 6455 §5.3 wants
/// each key unpredictable, which does not take a `getrandom` system call per 20 ms media frame.
struct MaskingKeys {
    private var bytes = [UInt8](repeating: 0, count: 64 * 4)
    private var used = 64 * 4

    mutating func next() -> WebSocketMaskingKey {
        if used == bytes.count {
            bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
            used = 0
        }
        defer { used += 4 }
        return WebSocketMaskingKey(bytes[used..<(used + 4)])!
    }
}

extension WebSocketOpcode {
    fileprivate var rawOpcodeValue: UInt8 {
        switch self {
        case .text: 0x1
        case .binary: 0x2
        case .connectionClose: 0x8
        case .ping: 0x9
        case .pong: 0xA
        default: 0x0
        }
    }
}

// MARK: - Twilio Media Streams messages (gateway → agent)

/// The messages Trunkline sends as "Twilio", field for field in Twilio's order
/// (see notes/reference-telephony.md §3). Each writes the JSON text only; framing is the caller's.
enum TwilioStreamMessage {
    static func writeConnected(into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#)
    }

    static func writeStart(
        into buffer: inout ByteBuffer, sequenceNumber: Int, streamSid: String, context: CallContext,
        mediaFormat: AgentMediaFormat = .muLaw
    ) {
        buffer.writeStaticString(#"{"event":"start","sequenceNumber":""#)
        buffer.writeDecimal(sequenceNumber)
        buffer.writeStaticString(#"","start":{"accountSid":"#)
        buffer.writeJSONString(context.accountSid)
        buffer.writeStaticString(#","streamSid":"#)
        buffer.writeJSONString(streamSid)
        buffer.writeStaticString(#","callSid":"#)
        buffer.writeJSONString(context.callSid)
        buffer.writeStaticString(#","tracks":["inbound"],"customParameters":{"#)
        var first = true
        func parameter(_ name: String, _ value: String) {
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            first = false
            buffer.writeJSONString(name)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeJSONString(value)
        }
        parameter("from_number", context.from)
        parameter("to_number", context.to)
        parameter("from", context.from)
        parameter("to", context.to)
        parameter("trunk", context.trunk)
        parameter("route", context.route)
        parameter("sip_call_id", context.sipCallID)
        for extra in context.extraParameters { parameter(extra.name, extra.value) }
        switch mediaFormat {
        case .muLaw:
            buffer.writeStaticString(
                #"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"#
            )
        case .linear16(let rate):
            buffer.writeStaticString(#"},"mediaFormat":{"encoding":"audio/l16","sampleRate":"#)
            buffer.writeDecimal(rate)
            buffer.writeStaticString(#","channels":1}},"streamSid":"#)
        }
        buffer.writeJSONString(streamSid)
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// `payload` is μ-law, base64'd here. `streamSid` must be JSON-safe (ours is `MZ` + hex).
    static func writeMedia(
        into buffer: inout ByteBuffer, sequenceNumber: Int, chunk: Int, timestampMs: Int,
        payload: UnsafeRawBufferPointer, streamSid: String
    ) {
        buffer.writeStaticString(#"{"event":"media","sequenceNumber":""#)
        buffer.writeDecimal(sequenceNumber)
        buffer.writeStaticString(#"","media":{"track":"inbound","chunk":""#)
        buffer.writeDecimal(chunk)
        buffer.writeStaticString(#"","timestamp":""#)
        buffer.writeDecimal(timestampMs)
        buffer.writeStaticString(#"","payload":""#)
        buffer.writeBase64(payload)
        buffer.writeStaticString(#""},"streamSid":""#)
        buffer.writeString(streamSid)
        buffer.writeStaticString(#""}"#)
    }

    static func writeDTMF(into buffer: inout ByteBuffer, sequenceNumber: Int, digit: Character, streamSid: String) {
        buffer.writeStaticString(#"{"event":"dtmf","streamSid":"#)
        buffer.writeJSONString(streamSid)
        buffer.writeStaticString(#","sequenceNumber":""#)
        buffer.writeDecimal(sequenceNumber)
        buffer.writeStaticString(#"","dtmf":{"track":"inbound_track","digit":"#)
        buffer.writeJSONString(String(digit))
        buffer.writeStaticString("}}")
    }

    /// `{"event":"…","sequenceNumber":"n","streamSid":"MZ…"`: how every message but `connected`, `start`,
    /// `media`, `dtmf` and `stop` (Twilio's own field orders) begins.
    static func writeHead(_ event: StaticString, into buffer: inout ByteBuffer, sequenceNumber: Int, streamSid: String) {
        buffer.writeStaticString(#"{"event":""#)
        buffer.writeStaticString(event)
        buffer.writeStaticString(#"","sequenceNumber":""#)
        buffer.writeDecimal(sequenceNumber)
        buffer.writeStaticString(#"","streamSid":"#)
        buffer.writeJSONString(streamSid)
    }

    static func writeMark(into buffer: inout ByteBuffer, sequenceNumber: Int, name: String, streamSid: String) {
        writeHead("mark", into: &buffer, sequenceNumber: sequenceNumber, streamSid: streamSid)
        buffer.writeStaticString(#","mark":{"name":"#)
        buffer.writeJSONString(name)
        buffer.writeStaticString("}}")
    }

    /// Extension: an agent request (e.g. `sendDigits`) that could not be carried out.
    static func writeError(into buffer: inout ByteBuffer, sequenceNumber: Int, about event: String, message: String, streamSid: String) {
        writeHead("error", into: &buffer, sequenceNumber: sequenceNumber, streamSid: streamSid)
        buffer.writeStaticString(#","error":{"event":"#)
        buffer.writeJSONString(event)
        buffer.writeStaticString(#","message":"#)
        buffer.writeJSONString(message)
        buffer.writeStaticString("}}")
    }

    /// Extension: secure-capture progress. Carries counts, `*` masks, the sink's token and at most a route-allowed
    /// last four; never a captured key.
    static func writeSecureCapture(into buffer: inout ByteBuffer, sequenceNumber: Int, update: SecureCaptureUpdate, streamSid: String) {
        writeHead("secureCapture", into: &buffer, sequenceNumber: sequenceNumber, streamSid: streamSid)
        switch update {
        case .started(let reference):
            buffer.writeStaticString(#","secureCapture":{"state":"started""#)
            if let reference {
                buffer.writeStaticString(#","reference":"#)
                buffer.writeJSONString(reference)
            }
        case .digit(let count):
            buffer.writeStaticString(#","secureCapture":{"state":"digit","masked":""#)
            buffer.writeRepeatingByte(UInt8(ascii: "*"), count: count)
            buffer.writeStaticString(#"","count":"#)
            buffer.writeDecimal(count)
        case .result(let result):
            buffer.writeStaticString(#","secureCapture":{"state":"result","status":"#)
            buffer.writeJSONString(result.status.rawValue)
            buffer.writeStaticString(#","endedBy":"#)
            buffer.writeJSONString(result.endedBy.rawValue)
            buffer.writeStaticString(#","count":"#)
            buffer.writeDecimal(result.count)
            if let luhnValid = result.luhnValid {
                buffer.writeStaticString(luhnValid ? #","luhnValid":true"# : #","luhnValid":false"#)
            }
            for (name, value) in [("last4", result.last4), ("token", result.token), ("reference", result.reference), ("error", result.error)] {
                guard let value else { continue }
                buffer.writeString(#",""# + name + #"":"#)
                buffer.writeJSONString(value)
            }
        }
        buffer.writeStaticString("}}")
    }

    /// Extension: transfer progress. Never carries the target's headers.
    static func writeTransfer(into buffer: inout ByteBuffer, sequenceNumber: Int, update: TransferUpdate, streamSid: String) {
        writeHead("transfer", into: &buffer, sequenceNumber: sequenceNumber, streamSid: streamSid)
        buffer.writeStaticString(#","transfer":{"status":"#)
        buffer.writeJSONString(update.status.rawValue)
        if let sipStatus = update.sipStatus {
            buffer.writeStaticString(#","sipStatus":"#)
            buffer.writeDecimal(sipStatus)
        }
        if let reason = update.reason {
            buffer.writeStaticString(#","reason":"#)
            buffer.writeJSONString(reason)
        }
        buffer.writeStaticString("}}")
    }

    static func writeStop(
        into buffer: inout ByteBuffer, sequenceNumber: Int, accountSid: String, callSid: String, streamSid: String
    ) {
        buffer.writeStaticString(#"{"event":"stop","sequenceNumber":""#)
        buffer.writeDecimal(sequenceNumber)
        buffer.writeStaticString(#"","stop":{"accountSid":"#)
        buffer.writeJSONString(accountSid)
        buffer.writeStaticString(#","callSid":"#)
        buffer.writeJSONString(callSid)
        buffer.writeStaticString(#"},"streamSid":"#)
        buffer.writeJSONString(streamSid)
        buffer.writeInteger(UInt8(ascii: "}"))
    }
}
