import CallFlow

extension FlowAudio {
    /// The audio of every flow route, by route name, made before the gateway takes calls: a flow whose speech
    /// cannot be rendered stops the start, not a call. One synthesizer (and cache) serves them all.
    static func forRoutes(of dialplan: Dialplan) throws -> [String: FlowAudio] {
        var speech: SpeechSynthesizer?
        var audio: [String: FlowAudio] = [:]
        for route in dialplan.routes {
            guard case .flow(let flow) = route.action else { continue }
            do {
                if speech == nil, flow.says {
                    speech = try SpeechSynthesizer()
                }
                audio[route.name] = try FlowAudio(flow: flow, sampleRate: route.agentAudio.sampleRate, speech: speech)
            } catch {
                throw RouteFlowError(description: "route '\(route.name)': \(error)")
            }
        }
        return audio
    }
}

private struct RouteFlowError: Error, CustomStringConvertible {
    var description: String
}
