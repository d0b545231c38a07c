#!/bin/sh
# STIR/SHAKEN verifier throughput: verifications/second with a cached x5u certificate (parse + iat + cache hit +
# ES256 verify + orig/dest compare), single task. Build is release so the number means something.
#   bench/identity/run.sh [iterations]
set -eu
cd "$(dirname "$0")/../.."
TRUNKLINE_BENCH=1 TRUNKLINE_BENCH_ITERATIONS="${1:-20000}" \
  swift test -c release -Xswiftc -enable-testing --scratch-path .build-identity-release --filter IdentityBenchmark 2>&1 | grep -E 'identity-bench|passed|failed'
