import Hummingbird
import Media

/// `GET /v1/media/latency`: per codec and segment, how many packets were timed, the p50/p99/max bounds in µs, and
/// how many took longer than 20 ms (a whole packet time: late).
///
/// ```json
/// {"g711":{"rtp_received":{"count":5000,"p50_us":4,"p99_us":19,"max_us":120,"over_20ms":0},…},"opus":{…}}
/// ```
struct MediaLatencyReport: ResponseEncodable {
    struct Segment: Codable {
        var count: UInt64
        var p50_us: Int?
        var p99_us: Int?
        var max_us: Int?
        var over_20ms: UInt64
    }

    var codecs: [String: [String: Segment]]

    init(_ snapshot: MediaLatencySnapshot) {
        codecs = [:]
        for codec in MediaLatencyCodec.allCases {
            var segments: [String: Segment] = [:]
            for segment in MediaPathSegment.allCases {
                segments[segment.name] = Segment(
                    count: snapshot.count(segment, codec), p50_us: snapshot.percentile(0.5, segment, codec),
                    p99_us: snapshot.percentile(0.99, segment, codec), max_us: snapshot.percentile(1, segment, codec),
                    over_20ms: snapshot.count(over: 20_000, segment, codec))
            }
            codecs[codec.name] = segments
        }
    }

    func encode(to encoder: any Encoder) throws {
        try codecs.encode(to: encoder)
    }
}
