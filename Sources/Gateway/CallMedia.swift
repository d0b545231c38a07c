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
        let local = SRTPKey.generate(suite)
        negotiated.srtp?.localKeyParameters = local.sdesKeyParameters
        return .success(CallMedia(negotiated: negotiated, codec: codec, srtp: SRTPConfiguration(remote: remote, local: local)))
    }
}

struct CallMediaRefusal: Error {
    var reason: String
}
