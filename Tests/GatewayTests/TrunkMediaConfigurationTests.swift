import Foundation
@testable import Gateway
import SIP
import Testing

@Suite("Trunk media configuration: srtp and codecs")
struct TrunkMediaConfigurationTests {
    let config = ConfigurationTests()

    func trunk(_ extra: String) -> String {
        "trunks:\n  - name: t\n    allow: [127.0.0.0/8]\n\(extra)dialplan: dialplan.yaml\n"
    }

    @Test func defaultsAllowSRTPAndTakeEveryCodecInTheOfferersOrder() throws {
        let t = try #require(try config.load(trunk("")).trunks.first)
        #expect(t.srtp == .allowed && t.codecs == nil)
        let offerAnswer = t.offerAnswer(agentSampleRate: 8000)
        #expect(offerAnswer.supportedEncodings == ["PCMU", "PCMA", "OPUS"] && !offerAnswer.preferOurOrder)
        #expect(offerAnswer.srtpSuites.contains("AES_CM_128_HMAC_SHA1_80"))
        #expect(offerAnswer.opusParameters == "maxplaybackrate=8000; sprop-maxcapturerate=8000; useinbandfec=1; stereo=0; sprop-stereo=0")
        #expect(t.offerAnswer(agentSampleRate: 16000).opusParameters.hasPrefix("maxplaybackrate=16000; sprop-maxcapturerate=16000; "))
    }

    @Test func policyAndCodecOrderAreRead() throws {
        let t = try #require(try config.load(trunk("    srtp: required\n    codecs: [opus, PCMU]\n")).trunks.first)
        #expect(t.srtp == .required && t.codecs == ["opus", "pcmu"])
        #expect(t.offerAnswer(agentSampleRate: 8000).supportedEncodings == ["OPUS", "PCMU"])
        #expect(t.offerAnswer(agentSampleRate: 8000).preferOurOrder)
    }

    @Test func badValuesNameTheirLine() {
        config.expectError(trunk("    srtp: maybe\n"), line: 4, containing: "srtp must be one of disabled, allowed, required")
        config.expectError(trunk("    codecs: [opus, g729]\n"), line: 4, containing: "unknown codec 'g729'")
        config.expectError(trunk("    codecs: []\n"), line: 4, containing: "codecs needs at least one")
        config.expectError(trunk("    codecs: [pcmu, PCMU]\n"), line: 4, containing: "codecs lists a codec twice")
    }
}

@Suite("Jitter buffer configuration")
struct JitterConfigurationTests {
    let config = ConfigurationTests()

    @Test func boundsAreReadAndChecked() throws {
        #expect(try config.load(config.minimal).media.jitterMilliseconds == 40...200)
        #expect(try config.load("media: { jitter_min_ms: 60, jitter_max_ms: 300 }\n" + config.minimal).media.jitterMilliseconds == 60...300)
        config.expectError("media: { jitter_min_ms: 300, jitter_max_ms: 100 }\n" + config.minimal, line: 1, containing: "above jitter_max_ms")
        config.expectError("media: { jitter_max_ms: 5000 }\n" + config.minimal, line: 1, containing: "outside 20...1000")
    }
}

@Suite("Route agent audio")
struct RouteAgentAudioTests {
    let config = ConfigurationTests()

    @Test func agentAudioIsReadForAgentRoutesOnly() throws {
        let route = "routes:\n  - name: bot\n    agent: { url: \"ws://127.0.0.1:9/ws\" }\n"
        #expect(try config.load(config.minimal, dialplan: route).dialplan.routes[0].agentAudio == .muLaw)
        let wide = try config.load(config.minimal, dialplan: route + "    agent_audio: l16/24000\n")
        #expect(wide.dialplan.routes[0].agentAudio == .linear16(sampleRate: 24000))
        config.expectError(config.minimal, dialplan: route + "    agent_audio: l16/44100\n", line: 4, containing: "agent_audio must be mulaw, l16/16000 or l16/24000")
        config.expectError(config.minimal, dialplan: "routes:\n  - name: d\n    embedded: demo\n    agent_audio: l16/16000\n", line: 4, containing: "agent and flow routes only")
    }
}
