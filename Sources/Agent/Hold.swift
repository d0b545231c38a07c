import NIOCore

extension TwilioStreamMessage {
    /// Extension: `{"event":"hold","sequenceNumber":…,"streamSid":…,"hold":{"status":"held"|"resumed"}}`.
    static func writeHold(into buffer: inout ByteBuffer, sequenceNumber: Int, held: Bool, streamSid: String) {
        writeHead("hold", into: &buffer, sequenceNumber: sequenceNumber, streamSid: streamSid)
        buffer.writeStaticString(held ? #","hold":{"status":"held"}}"# : #","hold":{"status":"resumed"}}"#)
    }
}
