#!/usr/bin/env python3
"""Media load benchmark (`make bench`; not part of `make test`).

sipp places N concurrent calls that play caller RTP (G.711 μ-law or Opus) through a release build of the gateway to
an echo agent (`trunkline-bench echo-agent`, SwiftNIO, sends every `media` message back) over WebSocket on
loopback, stepping N up until more than 0.5 % of packets are lost or late or a call fails. Then sipp's call rate
(`-r`) is stepped up on short routed calls (INVITE → 200 → ACK → BYE) until a call fails or sipp cannot keep the
rate. Prints a table and writes the figures as JSON under bench/results/.

Each media step runs a fresh gateway; once all N calls are up it measures, over a window:
  - the gateway process's own CPU (utime + stime from /proc/PID/stat; sipp and the echo agent are apart);
  - its RSS growth over the idle gateway, per call;
  - time in the gateway per packet (GET /v1/media/latency: each direction is two segments, pacing excluded);
and after the calls: lost + late packets from the call records (caller → gateway), 20 ms ticks that ran more than a
packet time late (gateway → agent and gateway → caller, from the histograms), and failed calls (sipp, records).

  bench/media_bench.py [--g711 100,250,...] [--opus 50,100,...] [--rates 100,250,...] [--hold 30] [--quick]
  bench/media_bench.py --profile g711|opus [--calls 5]   # instructions per packet under callgrind
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Release binaries; TRUNKLINE_BENCH_BIN=.build/debug checks the harness against a debug build (figures meaningless).
BIN = os.environ.get("TRUNKLINE_BENCH_BIN", os.path.join(ROOT, ".build-release", "release"))
GATEWAY = os.path.join(BIN, "trunkline")
TOOL = os.path.join(BIN, "trunkline-bench")
SCENARIO = os.path.join(ROOT, "bench", "scenarios", "bench_call.xml.template")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MAX_LOSS = 0.005

CODECS = {
    # codec: (trunk codecs, SDP media lines, RTP packets per second)
    "g711": ("[pcmu]", "m=audio [media_port] RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=ptime:20"),
    "opus": ("[opus]", "m=audio [media_port] RTP/AVP 96 101\na=rtpmap:96 opus/48000/2\na=fmtp:96 useinbandfec=1\n"
                       "a=rtpmap:101 telephone-event/48000\na=ptime:20"),
}


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_sip_port():
    """A port free for both UDP and TCP: sofia listens on both, and after a step's thousands of WebSocket
    connections a UDP-free port can still be a TCP port in use."""
    for _ in range(100):
        port = free_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise SystemExit("no port free for both UDP and TCP")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model, "load_average_at_start": os.getloadavg(),
            "kernel": os.uname().release}


class EchoAgent:
    """The echo agent process; collects its per-stream summary lines."""

    def __init__(self, work, escaping=False):
        self.process = subprocess.Popen([TOOL, "echo-agent"] + (["--escaping"] if escaping else []), stdout=subprocess.PIPE, text=True,
                                        stderr=open(os.path.join(work, "echo-agent.log"), "w"))
        first = self.process.stdout.readline()
        match = re.search(r"port (\d+)", first)
        if not match:
            raise SystemExit(f"echo agent did not start: {first!r}")
        self.port = int(match.group(1))
        self.streams = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            try:
                stream = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.streams.append(stream)

    def take_streams(self):
        with self.lock:
            streams, self.streams = self.streams, []
        return streams

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)


class Gateway:
    """A release `trunkline serve` with one trunk (the codec under test) and one route to the echo agent."""

    def __init__(self, work, codec, agent_port, valgrind=None, binary=GATEWAY):
        self.work = work
        self.sip_port = free_sip_port()
        self.admin_port = free_port(socket.SOCK_STREAM)
        self.records = os.path.join(work, "calls.jsonl")
        if os.path.exists(self.records):
            os.remove(self.records)
        config = os.path.join(work, "trunkline.yaml")
        with open(config, "w") as f:
            f.write(f"""sip: {{ listen: 127.0.0.1, port: {self.sip_port} }}
media: {{ address: 127.0.0.1, rtp_ports: 20000-29999 }}
admin: {{ listen: 127.0.0.1, port: {self.admin_port} }}
call_records: {self.records}
prompts: {ROOT}/prompts
trunks:
  - name: bench
    allow: [127.0.0.0/8]
    codecs: {CODECS[codec][0]}
dialplan: {work}/dialplan.yaml
""")
        with open(os.path.join(work, "dialplan.yaml"), "w") as f:
            f.write(f'routes:\n  - name: echo\n    agent: {{ url: "ws://127.0.0.1:{agent_port}/echo" }}\n')
        self.log = os.path.join(work, "gateway.log")
        command = [binary, "serve", "-c", config, "--log-level", "notice"]
        self.process = subprocess.Popen((valgrind or []) + command, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        deadline = time.time() + (300 if valgrind else 30)
        while "trunkline ready" not in open(self.log).read():
            if self.process.poll() is not None or time.time() > deadline:
                raise SystemExit(f"gateway did not start:\n{open(self.log).read()[-2000:]}")
            time.sleep(0.1)

    @property
    def pid(self):
        return self.process.pid

    def latency(self, reset=False):
        url = f"http://127.0.0.1:{self.admin_port}/v1/media/latency" + ("?reset=true" if reset else "")
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)

    def wait_for_records(self, count, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            records = self.read_records()
            if len(records) >= count:
                return records
            time.sleep(0.5)
        return self.read_records()

    def read_records(self):
        if not os.path.exists(self.records):
            return []
        with open(self.records) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def scenario(work, codec, pcap, hold_ms):
    with open(SCENARIO) as f:
        text = f.read()
    play = f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>' if pcap else ""
    text = text.replace("OFFER_MEDIA", CODECS[codec][1]).replace("PCAP_PLAY", play).replace("HOLD_MS", str(hold_ms))
    path = os.path.join(work, f"{codec}-{'media' if pcap else 'setup'}.xml")
    with open(path, "w") as f:
        f.write(text)
    return path


def sipp(work, scenario_path, gateway, calls, rate, limit, timeout_s, name):
    """Starts sipp; returns (process, stat file)."""
    stat = os.path.join(work, f"{name}.csv")
    command = ["sipp", "-sf", scenario_path, "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1",
               "-mp", str(free_port()), "-s", "echo", "-m", str(calls), "-l", str(limit), "-r", str(rate),
               "-recv_timeout", "10000", "-nostdin", "-timeout", f"{timeout_s}s",
               "-trace_stat", "-stf", stat, "-fd", "1", f"127.0.0.1:{gateway.sip_port}"]
    log = open(os.path.join(work, f"{name}.sipp.log"), "w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=work), stat


def sipp_totals(stat):
    """The last line of sipp's statistics CSV as a dict (cumulative columns end in (C))."""
    try:
        with open(stat) as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
    except FileNotFoundError:
        return {}
    if len(lines) < 2:
        return {}
    header = lines[0].split(";")
    values = lines[-1].split(";")
    return dict(zip(header, values))


def percentiles(report, codec):
    segments = report[codec]
    row = {}
    for name, segment in segments.items():
        row[name] = {"count": segment["count"], "p50_us": segment.get("p50_us"), "p99_us": segment.get("p99_us"),
                     "max_us": segment.get("max_us"), "over_20ms": segment.get("over_20ms")}
    def total(a, b, key):
        x, y = segments[a].get(key), segments[b].get(key)
        return None if x is None or y is None else x + y
    # A direction is two segments; the sum of their percentiles bounds the direction's percentile from above.
    row["rtp_to_agent"] = {k: total("rtp_received", "agent_frame_sent", k) for k in ("p50_us", "p99_us")}
    row["agent_to_rtp"] = {k: total("agent_frame_received", "rtp_sent", k) for k in ("p50_us", "p99_us")}
    return row


def media_step(work, codec, calls, hold, ramp, agent, pcaps):
    gateway = Gateway(work, codec, agent.port)
    try:
        agent.take_streams()
        idle_rss = rss_kib(gateway.pid)
        ramp_s = calls / ramp
        process, stat = sipp(work, scenario(work, codec, pcaps[codec], hold * 1000), gateway, calls, ramp, calls,
                             hold + int(ramp_s) + 120, f"{codec}-{calls}")
        started = time.time()
        window_start = started + ramp_s + 3
        window = max(3.0, min(10.0, hold - ramp_s - 8))
        time.sleep(max(0.0, window_start - time.time()))
        gateway.latency(reset=True)
        cpu_before, t_before = cpu_seconds(gateway.pid), time.time()
        time.sleep(window)
        cpu_after, t_after = cpu_seconds(gateway.pid), time.time()
        rss = rss_kib(gateway.pid)
        latency = gateway.latency()
        process.wait()
        records = gateway.wait_for_records(calls)
    finally:
        gateway.stop()
    time.sleep(1)  # the agent prints a stream's line when the gateway's socket closes
    totals = sipp_totals(stat)
    streams = agent.take_streams()
    failed_sipp = int(totals.get("FailedCall(C)", "0") or 0)
    answered = [r for r in records if r.get("sip_status") == 200 and (r.get("codec") or "").lower() == ("pcmu" if codec == "g711" else "opus")]
    failed = max(failed_sipp, calls - len(answered), 0 if process.returncode == 0 else 1)
    received = sum(r.get("packets_in", 0) for r in answered)
    lost = sum(r.get("packets_lost", 0) for r in answered)
    late = sum(r.get("packets_late", 0) for r in answered)
    frames = sum(s["frames"] for s in streams)
    frames_late = sum(s["late"] for s in streams)
    # Lost or late: caller packets the jitter buffer never got in time (records), plus 20 ms ticks the gateway ran
    # more than a packet time late (its own histograms over the window), each way.
    loss_in = (lost + late) / max(1, received + lost)
    ticks = latency[codec]["agent_frame_sent"]["count"] + latency[codec]["rtp_sent"]["count"]
    late_ticks = latency[codec]["agent_frame_sent"]["over_20ms"] + latency[codec]["rtp_sent"]["over_20ms"]
    loss_gateway = late_ticks / max(1, ticks)
    cpu = cpu_after - cpu_before
    seconds = t_after - t_before
    row = {
        "codec": codec, "calls": calls, "hold_s": hold, "window_s": round(seconds, 2),
        "failed_calls": failed, "sipp_exit": process.returncode,
        "packets_in": received, "packets_lost": lost, "packets_late": late,
        "ticks_over_20ms": late_ticks, "ticks": ticks,
        # The agent's view: frames more than 60 ms behind the stream's first cadence (a jitter-buffer refill after
        # the generator's own late packets shifts the cadence, so this over-counts; not part of the verdict).
        "agent_frames": frames, "agent_frames_late_60ms": frames_late,
        "lost_or_late_pct": round(100 * (loss_in + loss_gateway), 3),
        "gateway_cpu_ms_per_call_second": round(1000 * cpu / (calls * seconds), 4),
        "gateway_cpu_cores": round(cpu / seconds, 3),
        "rss_kib_idle": idle_rss, "rss_kib_loaded": rss, "rss_kib_per_call": round((rss - idle_rss) / calls, 1),
        "latency": percentiles(latency, codec),
        "load_average": os.getloadavg(),
    }
    row["held"] = failed == 0 and loss_in + loss_gateway < MAX_LOSS
    return row


def setup_step(work, rate, agent, seconds=10):
    gateway = Gateway(work, "g711", agent.port)
    calls = rate * seconds
    try:
        # Short calls (500 ms): about rate/2 are up at once, each routed to the agent (a WebSocket per call).
        process, stat = sipp(work, scenario(work, "g711", None, 500), gateway, calls, rate, calls, seconds + 120,
                             f"setup-{rate}")
        started = time.time()
        process.wait()
        elapsed = time.time() - started
        records = gateway.wait_for_records(calls, timeout=30)
    finally:
        gateway.stop()
    agent.take_streams()
    totals = sipp_totals(stat)
    failed_sipp = int(totals.get("FailedCall(C)", "0") or 0)
    answered = sum(1 for r in records if r.get("sip_status") == 200)
    failed = max(failed_sipp, calls - answered)
    # sipp creates calls on its own clock; when it or the gateway falls behind, the run stretches beyond the
    # `seconds` of calls plus the last call's length.
    achieved = calls / max(0.001, elapsed - 0.6)
    return {"rate": rate, "calls": calls, "failed_calls": failed, "elapsed_s": round(elapsed, 2),
            "achieved_setups_per_s": round(achieved, 1), "sipp_exit": process.returncode,
            "retransmissions": int(totals.get("Retransmissions(C)", "0") or 0),
            "held": failed == 0 and achieved >= 0.9 * rate, "load_average": os.getloadavg()}


def profile(work, codec, calls, seconds, agent, pcaps):
    """Instructions per packet pair (one RTP in → agent, one agent → RTP out) under callgrind, steady state."""
    out = os.path.join(work, f"callgrind.{codec}.out")
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    # Valgrind 3.19 cannot read the DWARF 5 Swift's toolchain writes; the symbol table names functions well enough.
    stripped = os.path.join(work, "trunkline-nodebug")
    subprocess.run(["objcopy", "--strip-debug", GATEWAY, stripped], check=True)
    gateway = Gateway(work, codec, agent.port, valgrind=valgrind, binary=stripped)
    try:
        hold = seconds + 40
        process, stat = sipp(work, scenario(work, codec, pcaps[codec], hold * 1000), gateway, calls, 2, calls,
                             hold + 120, f"profile-{codec}")
        time.sleep(calls / 2 + 15)  # set-up under valgrind is slow; let the jitter buffers settle
        gateway.latency(reset=True)
        subprocess.run(["callgrind_control", "-i", "on", str(gateway.pid)], check=True, capture_output=True)
        time.sleep(seconds)
        subprocess.run(["callgrind_control", "-i", "off", str(gateway.pid)], check=True, capture_output=True)
        counts = gateway.latency()[codec]
        process.wait()
    finally:
        gateway.stop()
    agent.take_streams()
    packets = counts["rtp_sent"]["count"]  # timed on separate requests; the window is close enough
    annotate = subprocess.run(["callgrind_annotate", "--inclusive=no", out], capture_output=True, text=True).stdout
    total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", annotate).group(1).replace(",", ""))
    return {"codec": codec, "calls": calls, "packet_pairs": packets, "instructions": total,
            "instructions_per_packet_pair": round(total / max(1, packets)),
            "top": annotate.splitlines()[:60]}


def print_media_table(rows):
    print(f"{'codec':5} {'calls':>6} {'ok':>3} {'fail':>5} {'loss%':>7} {'cpu ms/call-s':>13} {'cores':>6} "
          f"{'KiB/call':>9} {'in p50/p99 µs':>14} {'out p50/p99 µs':>15} {'load':>5}")
    for r in rows:
        lat = r["latency"]
        print(f"{r['codec']:5} {r['calls']:>6} {'yes' if r['held'] else 'no':>3} {r['failed_calls']:>5} "
              f"{r['lost_or_late_pct']:>7} {r['gateway_cpu_ms_per_call_second']:>13} {r['gateway_cpu_cores']:>6} "
              f"{r['rss_kib_per_call']:>9} {str(lat['rtp_to_agent']['p50_us']) + '/' + str(lat['rtp_to_agent']['p99_us']):>14} "
              f"{str(lat['agent_to_rtp']['p50_us']) + '/' + str(lat['agent_to_rtp']['p99_us']):>15} {r['load_average'][0]:>5.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--g711", default="100,250,500,1000,1500,2000")
    parser.add_argument("--opus", default="50,100,200,300,500,750")
    parser.add_argument("--rates", default="100,250,500,1000,1500,2000")
    parser.add_argument("--hold", type=int, default=30, help="seconds each media call lasts")
    parser.add_argument("--ramp", type=int, default=200, help="calls per second while media steps ramp up")
    parser.add_argument("--quick", action="store_true", help="tiny steps to check the harness")
    parser.add_argument("--profile", choices=["g711", "opus"])
    parser.add_argument("--calls", type=int, default=5, help="calls under --profile")
    parser.add_argument("--escaping", action="store_true",
                        help="the agent's media messages take the gateway's general JSON path (its cost, to compare)")
    parser.add_argument("--out", help="JSON file (default bench/results/media-<UTC time>.json)")
    args = parser.parse_args()
    if args.quick:
        args.g711, args.opus, args.rates, args.hold = "10,20", "10", "50", 15

    if args.profile and not shutil.which("valgrind"):
        raise SystemExit("--profile needs valgrind (apt-get install valgrind)")
    for tool in (GATEWAY, TOOL):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool} missing: swift build -c release --scratch-path .build-release")
    work = tempfile.mkdtemp(prefix="trunkline-bench-")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    agent = EchoAgent(work, escaping=args.escaping)
    result = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "max_lost_or_late_pct": 100 * MAX_LOSS}
    try:
        longest = max(args.hold, 60)
        pcaps = {}
        for codec, name in (("g711", "pcmu"), ("opus", "opus")):
            pcaps[codec] = os.path.join(work, f"{codec}.pcap")
            subprocess.run([TOOL, "pcap", name, str(longest if args.profile else args.hold - 1), pcaps[codec]], check=True)
        if args.profile:
            result["profile"] = profile(work, args.profile, args.calls, 20, agent, pcaps)
            print("\n".join(result["profile"]["top"]))
            print(f"\n{args.profile}: {result['profile']['instructions_per_packet_pair']} instructions per packet pair "
                  f"({result['profile']['instructions']} over {result['profile']['packet_pairs']})")
        else:
            rows = []
            for codec, steps in (("g711", args.g711), ("opus", args.opus)):
                for calls in [int(n) for n in steps.split(",") if n]:
                    row = media_step(work, codec, calls, args.hold, args.ramp, agent, pcaps)
                    rows.append(row)
                    print_media_table([row])
                    if not row["held"]:
                        break
            setups = []
            for rate in [int(n) for n in args.rates.split(",") if n]:
                row = setup_step(work, rate, agent)
                setups.append(row)
                print(f"setup rate {rate}/s: achieved {row['achieved_setups_per_s']}/s, failed {row['failed_calls']}, "
                      f"retransmissions {row['retransmissions']}, held {row['held']}")
                if not row["held"]:
                    break
            result["media"] = rows
            result["setup"] = setups
            summary = {}
            for codec in ("g711", "opus"):
                held = [r for r in rows if r["codec"] == codec and r["held"]]
                best = max(held, key=lambda r: r["calls"]) if held else None
                summary[codec] = {"most_calls_held": best["calls"] if best else 0,
                                  "gateway_cpu_ms_per_call_second": best and best["gateway_cpu_ms_per_call_second"],
                                  "rss_kib_per_call": best and best["rss_kib_per_call"],
                                  "rtp_to_agent_us": best and best["latency"]["rtp_to_agent"],
                                  "agent_to_rtp_us": best and best["latency"]["agent_to_rtp"]}
            held_rates = [s["rate"] for s in setups if s["held"]]
            summary["setups_per_second_held"] = max(held_rates) if held_rates else 0
            result["summary"] = summary
            print("\nmedia steps:")
            print_media_table(rows)
            print("\nsummary:", json.dumps(summary, indent=2))
    finally:
        agent.stop()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or os.path.join(ROOT, "bench", "results", f"{'profile-' + args.profile if args.profile else 'media'}-{stamp}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nwrote {out} (work files in {work})")


if __name__ == "__main__":
    main()
