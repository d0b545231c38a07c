import NIOCore

/// The gateway's answer to an opt-out on a campaign call (the callee's key press or the agent's `optOut`).
public struct OptOutUpdate: Sendable, Equatable {
    /// `agent` or `dtmf`: who asked.
    public var source: String
    /// The revocation is in the store and the ledger (false: it could not be stored; the operator's log says why).
    public var stored: Bool
    /// The gateway ends the call after its confirmation prompt (`after_opt_out: hangup`).
    public var callEnds: Bool

    public init(source: String, stored: Bool, callEnds: Bool) {
        self.source = source
        self.stored = stored
        self.callEnds = callEnds
    }
}

extension TwilioStreamMessage {
    /// Extension: `{"event":"optOut","sequenceNumber":…,"streamSid":…,"optOut":{"status":"recorded"|"failed","source":…,"hangup":…}}`.
    static func writeOptOut(into buffer: inout ByteBuffer, sequenceNumber: Int, update: OptOutUpdate, streamSid: String) {
        writeHead("optOut", into: &buffer, sequenceNumber: sequenceNumber, streamSid: streamSid)
        buffer.writeStaticString(#","optOut":{"status":"#)
        buffer.writeStaticString(update.stored ? #""recorded""# : #""failed""#)
        buffer.writeStaticString(#","source":"#)
        buffer.writeJSONString(update.source)
        buffer.writeStaticString(update.callEnds ? #","hangup":true}}"# : #","hangup":false}}"#)
    }
}
