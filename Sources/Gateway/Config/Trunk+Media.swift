import Media
import SIP

extension GatewayConfiguration.MediaSettings {
    /// Reads `jitter_min_ms` and `jitter_max_ms`.
    mutating func parseJitter(_ fields: [String: ConfigNode], in node: ConfigNode) throws {
        let low = try fields["jitter_min_ms"]?.int(in: 20...1000) ?? jitterMilliseconds.lowerBound
        let high = try fields["jitter_max_ms"]?.int(in: 20...1000) ?? jitterMilliseconds.upperBound
        guard low <= high else { throw node.error("jitter_min_ms (\(low)) is above jitter_max_ms (\(high))") }
        jitterMilliseconds = low...high
    }
}

extension GatewayConfiguration.Trunk {
    /// Codec names a trunk may list, lower-case as in the config.
    static let knownCodecs = ["opus", "pcmu", "pcma"]

    /// Reads the trunk's media keys: `srtp` and `codecs`.
    mutating func parseMedia(_ fields: [String: ConfigNode]) throws {
        if let node = fields["srtp"] {
            let text = try node.string()
            guard let policy = SRTPPolicy(rawValue: text) else {
                throw node.error("srtp must be one of disabled, allowed, required (got '\(text)')")
            }
            srtp = policy
        }
        if let node = fields["codecs"] {
            let names = try node.stringList().map { $0.lowercased() }
            guard !names.isEmpty else { throw node.error("codecs needs at least one of \(Self.knownCodecs.joined(separator: ", "))") }
            for name in names where !Self.knownCodecs.contains(name) {
                throw node.error("unknown codec '\(name)' (known: \(Self.knownCodecs.joined(separator: ", ")))")
            }
            guard Set(names).count == names.count else { throw node.error("codecs lists a codec twice") }
            codecs = names
        }
    }

    /// Offer/answer as this trunk wants it: its codecs in its order (or every codec in the offerer's order), its
    /// SRTP policy over the suites this libsrtp can run, and an Opus fmtp that tells the peer the agent's rate
    /// (no point in the peer coding more bandwidth than the agent hears, RFC 7587 §6.1).
    func offerAnswer(agentSampleRate: Int) -> AudioOfferAnswer {
        AudioOfferAnswer(
            supportedEncodings: (codecs ?? ["pcmu", "pcma", "opus"]).map { $0.uppercased() },
            preferOurOrder: codecs != nil, srtp: srtp, srtpSuites: SRTPSuite.available.map(\.rawValue),
            opusParameters: "maxplaybackrate=\(agentSampleRate); sprop-maxcapturerate=\(agentSampleRate); "
                + AudioOfferAnswer.defaultOpusParameters)
    }
}
