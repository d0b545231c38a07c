#!/usr/bin/env bash
# Load benchmark (run on demand, not in CI): N concurrent sipp calls with G.711 audio from a pcap against a
# release build on the embedded demo agent, then prints the gateway's CPU cost per call-second, its peak RSS and
# whether every call succeeded.
#   bench/calls.sh [concurrent calls, default 100] [seconds per call, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-100}
hold=${2:-20}
./scripts/install-deps.sh
swift build -c release --product trunkline >/dev/null
bin=.build/release/trunkline

work=$(mktemp -d)
trap 'kill $gw 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sip=$(free_port)
cat > "$work/trunkline.yaml" <<YAML
sip: { listen: 127.0.0.1, port: $sip }
media: { address: 127.0.0.1, rtp_ports: 40000-44999 }
call_records: $work/calls.jsonl
prompts: $PWD/prompts
trunks:
  - name: local
    allow: [127.0.0.0/8]
dialplan: dialplan.yaml
YAML
printf 'routes:\n  - name: demo\n    embedded: demo\n' > "$work/dialplan.yaml"
"$bin" serve -c "$work/trunkline.yaml" --log-level notice 2> "$work/gateway.log" &
gw=$!
timeout 30 bash -c "until grep -q 'trunkline ready' '$work/gateway.log'; do sleep 0.1; done"

# A caller that plays the A-law pcap (7 s of speech) and holds the call for the rest of its length; the
# gateway sends its 20 ms packets all along.
sed -e 's/\[rtp_sink\]/[auto_media_port]/' Tests/EndToEndTests/scenarios/call_pcap_dtmf.xml \
    | grep -v -e dtmf_2833 -e 'milliseconds="400"' -e 'milliseconds="5000"' > "$work/load.xml"

cpu() { awk '{print $14 + $15}' "/proc/$gw/stat"; }   # utime + stime in clock ticks
ticks=$(getconf CLK_TCK)
before=$(cpu)
start=$(date +%s.%N)
sipp -sf "$work/load.xml" -i 127.0.0.1 -p "$(free_port)" -mi 127.0.0.1 -mp "$(free_port)" -s 1000 \
     -m "$calls" -l "$calls" -r 50 -d "$((hold * 1000))" -nostdin -timeout "$((hold + 60))s" \
     127.0.0.1:"$sip" > "$work/sipp.log" 2>&1 && ok=yes || ok="no (sipp exit $?)"
end=$(date +%s.%N)
after=$(cpu)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$gw/status")
records=$(wc -l < "$work/calls.jsonl")
python3 - "$calls" "$hold" "$before" "$after" "$ticks" "$start" "$end" "$rss" "$records" "$ok" <<'PY'
import sys
calls, hold, before, after, ticks, start, end, rss, records, ok = sys.argv[1:]
calls, hold = int(calls), int(hold)
cpu_s = (int(after) - int(before)) / int(ticks)
call_seconds = calls * hold
print(f"calls: {calls} concurrent x {hold} s, all succeeded: {ok}, call records: {records}")
print(f"wall: {float(end) - float(start):.1f} s, gateway CPU: {cpu_s:.2f} s")
print(f"CPU per call-second: {cpu_s / call_seconds * 1000:.2f} ms  (= {cpu_s / call_seconds * 100:.2f}% of a core per call)")
print(f"peak RSS: {int(rss) / 1024:.1f} MiB")
PY
