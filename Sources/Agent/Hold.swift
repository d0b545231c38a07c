import NIOCore

extension TwilioStreamMessage {
    /// Extension: `{"event":"hold","sequenceNumber":…,"streamSid":…,"hold":{"status":"held"|"resumed"}}`.
    static func writeHold(into buffer: inout ByteBuffer, sequenceNumber: Int, held: Bool, streamSid: String) {
        buffer.writeStaticString(#"{"event":"hold","sequenceNumber":""#)
        buffer.writeDecimal(sequenceNumber)
        buffer.writeStaticString(#"","streamSid":"#)
        buffer.writeJSONString(streamSid)
        buffer.writeStaticString(held ? #","hold":{"status":"held"}}"# : #","hold":{"status":"resumed"}}"#)
    }
}
