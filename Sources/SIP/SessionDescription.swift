/// An SDP session description (RFC 4566), reduced to what call setup needs: the connection address and
/// the audio stream with its payload formats. Parsing is strict about structure and tolerant of lines it does
/// not use, so a carrier's extra attributes never fail a call.
public struct SessionDescription: Sendable, Equatable {
    public var origin: Origin
    public var sessionName: String
    /// Session-level `c=` address, if any.
    public var connectionAddress: String?
    public var media: [MediaDescription]

    public struct Origin: Sendable, Equatable {
        public var username: String
        public var sessionID: String
        public var version: String
        public var address: String

        public init(username: String, sessionID: String, version: String, address: String) {
            self.username = username
            self.sessionID = sessionID
            self.version = version
            self.address = address
        }
    }

    public init(origin: Origin, sessionName: String, connectionAddress: String?, media: [MediaDescription]) {
        self.origin = origin
        self.sessionName = sessionName
        self.connectionAddress = connectionAddress
        self.media = media
    }

    /// The first `m=audio` line, if any.
    public var audio: MediaDescription? { media.first { $0.type == "audio" } }
}

/// One `m=` section.
public struct MediaDescription: Sendable, Equatable {
    public var type: String
    public var port: Int
    public var proto: String
    /// Payload types in the offerer's order of preference.
    public var formats: [UInt8]
    public var rtpMaps: [UInt8: RTPMap]
    public var fmtp: [UInt8: String]
    public var connectionAddress: String?
    public var direction: Direction
    public var packetTime: Int?
    /// SDES keys (`a=crypto`), in the offerer's order of preference.
    public var crypto: [SDESCrypto]
    /// `a=rtcp:` (RFC 3605): the RTCP port, and address if not the stream's, when not the RTP port + 1.
    public var rtcpPort: Int?
    public var rtcpAddress: String?
    /// `a=rtcp-mux` (RFC 5761): RTCP on the RTP port.
    public var rtcpMultiplexed = false

    public struct RTPMap: Sendable, Equatable {
        public var encoding: String
        public var clockRate: Int
        public var channels: Int

        public init(encoding: String, clockRate: Int, channels: Int = 1) {
            self.encoding = encoding
            self.clockRate = clockRate
            self.channels = channels
        }
    }

    public enum Direction: String, Sendable {
        case sendrecv, sendonly, recvonly, inactive

        /// What the answerer says back to this direction (RFC 3264 §6.1).
        public var answer: Direction {
            switch self {
            case .sendrecv: .sendrecv
            case .sendonly: .recvonly
            case .recvonly: .sendonly
            case .inactive: .inactive
            }
        }
    }

    public init(
        type: String, port: Int, proto: String, formats: [UInt8], rtpMaps: [UInt8: RTPMap] = [:],
        fmtp: [UInt8: String] = [:], connectionAddress: String? = nil, direction: Direction = .sendrecv,
        packetTime: Int? = nil, crypto: [SDESCrypto] = []
    ) {
        self.type = type
        self.port = port
        self.proto = proto
        self.formats = formats
        self.rtpMaps = rtpMaps
        self.fmtp = fmtp
        self.connectionAddress = connectionAddress
        self.direction = direction
        self.packetTime = packetTime
        self.crypto = crypto
    }

    /// The rtpmap of a payload type: explicit, or the RFC 3551 static assignment.
    public func rtpMap(for payloadType: UInt8) -> RTPMap? {
        if let map = rtpMaps[payloadType] { return map }
        switch payloadType {
        case 0: return RTPMap(encoding: "PCMU", clockRate: 8000)
        case 8: return RTPMap(encoding: "PCMA", clockRate: 8000)
        case 9: return RTPMap(encoding: "G722", clockRate: 8000)
        case 18: return RTPMap(encoding: "G729", clockRate: 8000)
        case 13: return RTPMap(encoding: "CN", clockRate: 8000)
        default: return nil
        }
    }
}

/// Why an SDP body could not be read. `description` names the line so a carrier's bug can be reported.
public struct SDPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public var description: String { "SDP line \(line): \(message)" }
}

extension SessionDescription {
    /// Hostile-input bounds: a real offer is a few hundred bytes.
    static let maximumLength = 16 * 1024
    static let maximumMediaSections = 16

    /// Parses an SDP body. Accepts CRLF or LF line ends.
    public init(parsing text: String) throws(SDPParseError) {
        guard text.utf8.count <= Self.maximumLength else {
            throw SDPParseError(line: 0, message: "body longer than \(Self.maximumLength) bytes")
        }
        var origin: Origin?
        var sessionName = "-"
        var sessionConnection: String?
        var media: [MediaDescription] = []
        var sawVersion = false

        for (index, rawLine) in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let lineNumber = index + 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine[...]
            if line.isEmpty { continue }
            guard line.count >= 2, line[line.index(after: line.startIndex)] == "=" else {
                throw SDPParseError(line: lineNumber, message: "expected '<type>=<value>'")
            }
            let kind = line.first!
            let value = line.dropFirst(2)
            switch kind {
            case "v":
                guard value == "0" else { throw SDPParseError(line: lineNumber, message: "unsupported version '\(value)'") }
                sawVersion = true
            case "o":
                let parts = value.split(separator: " ")
                guard parts.count == 6 else { throw SDPParseError(line: lineNumber, message: "o= needs 6 fields") }
                origin = Origin(username: String(parts[0]), sessionID: String(parts[1]), version: String(parts[2]), address: String(parts[5]))
            case "s":
                sessionName = String(value)
            case "c":
                let address = try Self.parseConnection(value, line: lineNumber)
                if media.isEmpty { sessionConnection = address } else { media[media.count - 1].connectionAddress = address }
            case "m":
                guard media.count < Self.maximumMediaSections else {
                    throw SDPParseError(line: lineNumber, message: "more than \(Self.maximumMediaSections) media sections")
                }
                media.append(try Self.parseMedia(value, line: lineNumber))
            case "a":
                guard !media.isEmpty else { continue }  // session-level attributes are not needed yet
                try Self.parseAttribute(value, into: &media[media.count - 1], line: lineNumber)
            default:
                continue
            }
        }
        guard sawVersion else { throw SDPParseError(line: 1, message: "missing v=0") }
        guard let origin else { throw SDPParseError(line: 2, message: "missing o= line") }
        self.init(origin: origin, sessionName: sessionName, connectionAddress: sessionConnection, media: media)
    }

    private static func parseConnection(_ value: Substring, line: Int) throws(SDPParseError) -> String {
        let parts = value.split(separator: " ")
        guard parts.count == 3, parts[0] == "IN", parts[1] == "IP4" || parts[1] == "IP6" else {
            throw SDPParseError(line: line, message: "c= must be 'IN IP4|IP6 <address>'")
        }
        // Multicast TTL suffixes ("/127") are not used by phone trunks; keep only the address.
        return String(parts[2].split(separator: "/").first ?? parts[2])
    }

    private static func parseMedia(_ value: Substring, line: Int) throws(SDPParseError) -> MediaDescription {
        let parts = value.split(separator: " ")
        guard parts.count >= 3 else { throw SDPParseError(line: line, message: "m= needs media, port, proto") }
        let portField = parts[1].split(separator: "/").first ?? parts[1]
        guard let port = Int(portField), (0...65535).contains(port) else {
            throw SDPParseError(line: line, message: "bad media port '\(parts[1])'")
        }
        var formats: [UInt8] = []
        if parts[2].hasPrefix("RTP/") {
            for field in parts.dropFirst(3) {
                guard let pt = UInt8(field), pt < 128 else {
                    throw SDPParseError(line: line, message: "bad RTP payload type '\(field)'")
                }
                formats.append(pt)
            }
        }
        return MediaDescription(type: String(parts[0]), port: port, proto: String(parts[2]), formats: formats)
    }

    private static func parseAttribute(_ value: Substring, into media: inout MediaDescription, line: Int) throws(SDPParseError) {
        let name = value.prefix { $0 != ":" }
        let argument = value.dropFirst(name.count + 1)
        switch name {
        case "rtpmap":
            let fields = argument.split(separator: " ", maxSplits: 1)
            guard fields.count == 2, let pt = UInt8(fields[0]), pt < 128 else {
                throw SDPParseError(line: line, message: "bad a=rtpmap")
            }
            let encoding = fields[1].split(separator: "/")
            guard encoding.count >= 2, let rate = Int(encoding[1]), rate > 0 else {
                throw SDPParseError(line: line, message: "bad a=rtpmap encoding '\(fields[1])'")
            }
            let channels = encoding.count > 2 ? Int(encoding[2]) ?? 1 : 1
            media.rtpMaps[pt] = .init(encoding: String(encoding[0]), clockRate: rate, channels: channels)
        case "fmtp":
            let fields = argument.split(separator: " ", maxSplits: 1)
            if fields.count == 2, let pt = UInt8(fields[0]) { media.fmtp[pt] = String(fields[1]) }
        case "ptime":
            media.packetTime = Int(argument)
        case "rtcp":
            // "port [IN IP4 address]"; a line we cannot read leaves the RFC 3550 default (RTP port + 1).
            let fields = argument.split(separator: " ")
            if let first = fields.first, let port = Int(first), (1...65535).contains(port) {
                media.rtcpPort = port
                if fields.count == 4, fields[1] == "IN" { media.rtcpAddress = String(fields[3]) }
            }
        case "rtcp-mux":
            media.rtcpMultiplexed = true
        case "crypto":
            // A line we cannot read is skipped like an unknown suite: another line may still be usable.
            if let crypto = SDESCrypto(attribute: argument) { media.crypto.append(crypto) }
        case "sendrecv", "sendonly", "recvonly", "inactive":
            media.direction = MediaDescription.Direction(rawValue: String(name))!
        default:
            break
        }
    }

    /// The SDP text, CRLF line ends, in RFC 4566 field order.
    public var text: String {
        var lines = [
            "v=0",
            "o=\(origin.username) \(origin.sessionID) \(origin.version) IN \(Self.addressType(origin.address)) \(origin.address)",
            "s=\(sessionName)",
        ]
        if let connectionAddress { lines.append("c=IN \(Self.addressType(connectionAddress)) \(connectionAddress)") }
        lines.append("t=0 0")
        for m in media {
            lines.append("m=\(m.type) \(m.port) \(m.proto)" + m.formats.map { " \($0)" }.joined())
            if let address = m.connectionAddress { lines.append("c=IN \(Self.addressType(address)) \(address)") }
            for pt in m.formats {
                if let map = m.rtpMaps[pt] {
                    lines.append("a=rtpmap:\(pt) \(map.encoding)/\(map.clockRate)" + (map.channels > 1 ? "/\(map.channels)" : ""))
                }
                if let fmtp = m.fmtp[pt] { lines.append("a=fmtp:\(pt) \(fmtp)") }
            }
            if let ptime = m.packetTime { lines.append("a=ptime:\(ptime)") }
            for crypto in m.crypto { lines.append("a=crypto:\(crypto.attributeValue)") }
            if m.rtcpMultiplexed { lines.append("a=rtcp-mux") }
            lines.append("a=\(m.direction.rawValue)")
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    private static func addressType(_ address: String) -> String { address.contains(":") ? "IP6" : "IP4" }
}
