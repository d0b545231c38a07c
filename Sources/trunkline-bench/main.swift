// The media benchmark's helpers (bench/media.sh runs them; not part of the gateway):
//   trunkline-bench echo-agent [--threads N]   a Twilio Media Streams agent that echoes every `media` message
//   trunkline-bench pcap pcmu|opus SECONDS OUT  caller RTP for sipp's play_pcap_audio, speech looped to SECONDS
#if canImport(Glibc)
import Glibc
#endif

let arguments = Array(CommandLine.arguments.dropFirst())

func usage() -> Never {
    writeLine(to: 2, "usage: trunkline-bench echo-agent [--threads N] | pcap pcmu|opus SECONDS OUT")
    exit(64)
}

switch arguments.first {
case "echo-agent":
    var threads = 1
    if arguments.count == 3, arguments[1] == "--threads", let n = Int(arguments[2]), n > 0 {
        threads = n
    } else if arguments.count != 1 {
        usage()
    }
    try EchoAgentServer.run(threads: threads)
case "pcap":
    guard arguments.count == 4, let codec = BenchPcap.Codec(rawValue: arguments[1]), let seconds = Int(arguments[2]),
          seconds > 0 else { usage() }
    try BenchPcap.write(codec: codec, seconds: seconds, to: arguments[3])
default:
    usage()
}
