#!/usr/bin/env bash
# Every benchmark, in order, bounded. Loopback only. Results on stdout.
#   npm run bench            (BENCH_QUICK=1 for a short smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { if command -v taskset >/dev/null; then taskset -c 1 "$@"; else "$@"; fi; }
if [ "${BENCH_QUICK:-}" = 1 ]; then
  micro=(--iterations 20000)
  http=(--duration 3 --runs 1 --warmup-s 1); undici=(--requests 3000 --runs 1 --warmup 500)
  jobs=(--cycles 300 --latency-cycles 50); memory=(--requests 100000 --jobs 10000); nonces=(--held 100000)
  reserve=(--turns 400 --rounds 1)
  soak=(--minutes 2 --segment-s 10 --warmup-s 3 --calibrate-s 5 --headroom 4)
else
  micro=(); http=(); undici=(); jobs=(); memory=(); nonces=(); reserve=(); soak=()
fi
echo "## micro"; pin node --import tsx bench/micro.ts "${micro[@]}"
# http, soak and hostile pin themselves (CPU 1) and their servers (CPU 0).
if [ -x /usr/bin/wrk ]; then echo "## http (wrk)"; node --import tsx bench/http.ts --generator wrk "${http[@]}"; fi
echo "## http (undici)"; node --import tsx bench/http.ts --generator undici "${undici[@]}"
# jobs starts its own replicas and worker (pinned to CPU 0 and 1) for the latency part.
echo "## jobs (long poll)"; node --import tsx bench/jobs.ts "${jobs[@]}"
echo "## memory"; pin node --expose-gc --import tsx bench/memory.ts "${memory[@]}"
echo "## replay caches"; pin node --expose-gc --import tsx bench/nonces.ts "${nonces[@]}"
# reserve-cpu pins itself to CPU 0 and a Redis on loopback to CPU 1.
echo "## CPU per reservation"; node --expose-gc --import tsx bench/reserve-cpu.ts --dist "${reserve[@]}"
if [ -x /usr/bin/wrk ]; then echo "## soak"; node --import tsx bench/soak.ts "${soak[@]}"; fi
echo "## hostile inputs"; node --import tsx bench/hostile.ts
