import Media
import SIP

/// What the media layer needs for one call, made from the SDP agreement: the codec states' parameters and,
/// for SRTP, both keys (ours freshly drawn from the CSPRNG and written into the answer).
struct CallMedia {
    var negotiated: NegotiatedAudio
    var codec: AudioCodec
    var srtp: SRTPConfiguration?

    /// - Returns: the plan, or why the offer cannot be used (a 488 reason that never quotes a key).
    static func make(_ agreed: NegotiatedAudio) -> Result<CallMedia, CallMediaRefusal> {
        var negotiated = agreed
        guard let codec = AudioCodec(
            sdpName: agreed.encoding, payloadType: agreed.payloadType, formatParameters: agreed.remoteFormatParameters)
        else {
            return .failure(CallMediaRefusal(reason: "codec \(agreed.encoding) has no media implementation"))
        }
        guard let offered = agreed.srtp else { return .success(CallMedia(negotiated: negotiated, codec: codec, srtp: nil)) }
        guard let suite = SRTPSuite(rawValue: offered.suite) else {
            return .failure(CallMediaRefusal(reason: "SRTP suite \(offered.suite) is not supported"))
        }
        let remote: SRTPKey
        do {
            remote = try SRTPKey(suite: suite, sdesKeyParameters: offered.remoteKeyParameters)
        } catch {
            return .failure(CallMediaRefusal(reason: "unusable a=crypto: \(error.message)"))
        }
        // Ours was drawn already when we made the offer (calls we place); otherwise draw it for the answer.
        let local: SRTPKey
        if let offered = offered.localKeyParameters {
            guard let key = try? SRTPKey(suite: suite, sdesKeyParameters: offered) else {
                return .failure(CallMediaRefusal(reason: "our own SRTP key for \(suite.rawValue) is unusable"))
            }
            local = key
        } else {
            local = SRTPKey.generate(suite)
        }
        negotiated.srtp?.localKeyParameters = local.sdesKeyParameters
        return .success(CallMedia(negotiated: negotiated, codec: codec, srtp: SRTPConfiguration(remote: remote, local: local)))
    }
}

extension CallMedia {
    /// The offer for a call we place through `trunk`: its codecs in its order (G.711 first, then Opus, when it
    /// names none) and, unless its SRTP is disabled, a fresh key per suite this libsrtp runs.
    static func offer(for trunk: GatewayConfiguration.Trunk, agentSampleRate: Int) -> AudioOffer {
        let keys: [SDESCrypto] = trunk.srtp == .disabled ? [] : SRTPSuite.available.enumerated().map { index, suite in
            SDESCrypto(tag: index + 1, suite: suite.rawValue, keyParameters: SRTPKey.generate(suite).sdesKeyParameters)
        }
        let answering = trunk.offerAnswer(agentSampleRate: agentSampleRate)
        return AudioOffer(
            encodings: trunk.codecs ?? ["pcmu", "pcma", "opus"], srtp: trunk.srtp, keys: keys,
            opusParameters: answering.opusParameters)
    }
}

struct CallMediaRefusal: Error {
    var reason: String
}
