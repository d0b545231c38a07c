// The media benchmark's helpers (bench/media.sh runs them; not part of the gateway):
//   trunkline-bench echo-agent [--threads N] [--escaping]   a Twilio Media Streams agent that echoes every `media`
//                                              message (--escaping: through the gateway's general JSON path)
//   trunkline-bench pcap pcmu|opus SECONDS OUT  caller RTP for sipp's play_pcap_audio, speech looped to SECONDS
#if canImport(Glibc)
import Glibc
#endif

let arguments = Array(CommandLine.arguments.dropFirst())

func usage() -> Never {
    writeLine(to: 2, "usage: trunkline-bench echo-agent [--threads N] [--escaping] | pcap pcmu|opus SECONDS OUT")
    exit(64)
}

switch arguments.first {
case "echo-agent":
    var threads = 1
    var escaping = false
    var options = arguments.dropFirst()
    while let option = options.popFirst() {
        switch option {
        case "--threads":
            guard let n = options.popFirst().flatMap({ Int($0) }), n > 0 else { usage() }
            threads = n
        case "--escaping":
            escaping = true
        default:
            usage()
        }
    }
    try EchoAgentServer.run(threads: threads, escaping: escaping)
case "pcap":
    guard arguments.count == 4, let codec = BenchPcap.Codec(rawValue: arguments[1]), let seconds = Int(arguments[2]),
          seconds > 0 else { usage() }
    try BenchPcap.write(codec: codec, seconds: seconds, to: arguments[3])
default:
    usage()
}
