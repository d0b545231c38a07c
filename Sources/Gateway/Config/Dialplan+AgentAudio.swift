import Agent

extension Dialplan {
    /// Reads `agent_audio`: `mulaw` (Twilio's 8 kHz μ-law, the default), `l16/16000` or `l16/24000`.
    static func parseAgentAudio(_ node: ConfigNode, action: Action) throws -> AgentMediaFormat {
        guard case .remoteAgent = action else { throw node.error("agent_audio applies to agent routes only") }
        let text = try node.string().lowercased()
        if text == "mulaw" { return .muLaw }
        let rates = AgentMediaFormat.linear16Rates
        guard text.hasPrefix("l16/"), let rate = Int(text.dropFirst(4)), rates.contains(rate) else {
            throw node.error("agent_audio must be mulaw, \(rates.map { "l16/\($0)" }.joined(separator: " or ")) (got '\(text)')")
        }
        return .linear16(sampleRate: rate)
    }
}
