#!/usr/bin/env bash
# Every benchmark, in order, bounded. Loopback only. Results on stdout.
#   npm run bench            (BENCH_QUICK=1 for a short smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { if command -v taskset >/dev/null; then taskset -c 1 "$@"; else "$@"; fi; }
if [ "${BENCH_QUICK:-}" = 1 ]; then
  micro=(--iterations 20000); http=(--requests 3000 --runs 1 --warmup 500); jobs=(--cycles 300); memory=(--requests 100000 --jobs 10000)
else
  micro=(); http=(); jobs=(); memory=()
fi
echo "## micro"; pin node --import tsx bench/micro.ts "${micro[@]}"
echo "## http"; node --import tsx bench/http.ts "${http[@]}"          # pins itself and its peers
echo "## jobs (1 ms poll pause)"; pin node --import tsx bench/jobs.ts "${jobs[@]}"
echo "## jobs (5 ms poll pause)"; pin node --import tsx bench/jobs.ts --poll-ms 5 "${jobs[@]}"
echo "## memory"; pin node --expose-gc --import tsx bench/memory.ts "${memory[@]}"
