#!/usr/bin/env bash
# The README's promise, timed as a newcomer meets it: a fresh clone of this repository's HEAD,
# the README's CPU set-up, then its demo command; prints one line with the times, each run's
# stars and estimate, and their order (docs/BENCHMARKS.md, "The CPU demo").
#   tools/demo_timing.sh idle|busy [WORKDIR]
# busy: another CPU-bound process (a Python busy loop) runs the whole time, as on a shared box.
set -uo pipefail
mode=${1:?idle or busy}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${2:-$(mktemp -d)}
burner=""
if [ "$mode" = busy ]; then
    python3 -c "while True: pass" &
    burner=$!
    trap 'kill $burner 2>/dev/null' EXIT
fi
t0=$(date +%s.%N)
git clone -q "$repo" "$work/clone" && cd "$work/clone" || exit 1
if ! eval "$(python3 .ci/readme_command.py setup-cpu)" >setup.log 2>&1; then
    tail -n 20 setup.log >&2
    exit 1
fi
t1=$(date +%s.%N)
eval "$(python3 .ci/readme_command.py demo)" >demo.log 2>&1
rc=$?
t2=$(date +%s.%N)
python3 - "$mode" "$t0" "$t1" "$t2" "$rc" <<'PY'
import csv
import sys

mode, t0, t1, t2, rc = sys.argv[1:]
t0, t1, t2 = float(t0), float(t1), float(t2)
with open("demo_results/report/leaderboard.csv", newline="") as f:
    board = {r["run_name"]: r for r in csv.DictReader(f)}
with open("demo_results/master_results.csv", newline="") as f:
    seconds = {r["run_name"]: float(r["total_duration_seconds"]) for r in csv.DictReader(f)}
runs = sorted(board, key=lambda n: -float(board[n]["wh_per_1000_queries"]))
each = " | ".join(
    f"{n}: {board[n]['stars']}* {float(board[n]['wh_per_1000_queries']):.5f} Wh/1k "
    f"({board[n]['energy_source']}), pass {seconds[n]:.1f} s"
    for n in runs
)
print(
    f"{mode}: clone+set-up {t1 - t0:.0f} s, demo {t2 - t1:.0f} s (exit {rc}), "
    f"total {t2 - t0:.0f} s | {each} | order {' > '.join(runs)}"
)
PY
