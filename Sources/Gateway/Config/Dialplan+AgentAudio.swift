import Agent

extension Dialplan {
    /// Reads `agent_audio`: `mulaw` (Twilio's 8 kHz μ-law, the default), `l16/16000` or `l16/24000` (16000 only
    /// for flows).
    static func parseAgentAudio(_ node: ConfigNode, action: Action) throws -> AgentMediaFormat {
        let rates: [Int]
        switch action {
        case .remoteAgent: rates = AgentMediaFormat.linear16Rates
        // A flow's audio (speech, prompts, recordings) is made at 8 kHz, or 16 kHz for wideband callers.
        case .flow: rates = [16000]
        case .embeddedDemo, .reject: throw node.error("agent_audio applies to agent and flow routes only")
        }
        let text = try node.string().lowercased()
        if text == "mulaw" { return .muLaw }
        guard text.hasPrefix("l16/"), let rate = Int(text.dropFirst(4)), rates.contains(rate) else {
            throw node.error("agent_audio must be mulaw, \(rates.map { "l16/\($0)" }.joined(separator: " or ")) (got '\(text)')")
        }
        return .linear16(sampleRate: rate)
    }
}
