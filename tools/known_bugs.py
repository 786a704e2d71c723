"""Put each known measurement bug back, one at a time, and check that the suite fails.

    python tools/known_bugs.py [WORDS ...]     # only the bugs whose name holds one of the words

Each bug is a one-line change (issue 18's list, and a few more in the code the issue names as
never executed) made in a scratch copy of the tree's tracked files, in a temporary folder; the
default suite then runs there (``MARK``, default: without Docker, GPU and slow tests;
``XDIST="-n 8"`` spreads it where pytest-xdist is installed) and stops at its first failure.
Prints "caught" with the first failing test, or "NOT CAUGHT"; exit status 1 when one is not
caught.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutation import copy_tree  # the same tracked files as the mutation runs stage

MEASURED_PASS = (
    "                records = _run_pass("
    "backend, source, batches, r, keep=data.images, keep_up_to=keep)\n"
)
BUGS = [
    (
        "generate() without min_new_tokens",
        "container/energy_bench/backends/pytorch.py",
        '            "min_new_tokens": min(s.min_new_tokens, budget),\n',
        "",
    ),
    (
        "no warmup before the measured passes",
        "container/energy_bench/benchmark.py",
        "        data.warmups = _warm_up(backend, source, meter, batches, config)\n",
        "        data.warmups = []\n",
    ),
    (
        "warmup inside the first measured window",
        "container/energy_bench/benchmark.py",
        MEASURED_PASS,
        "                if r == 0:\n"
        "                    _warm_up(backend, source, meter, batches, config)\n" + MEASURED_PASS,
    ),
    (
        "trace tolerance 5 % -> 50 %",
        "container/energy_bench/energy/meter.py",
        "TRACE_TOLERANCE = 0.05",
        "TRACE_TOLERANCE = 0.50",
    ),
    (
        "short window 10 updates -> 2",
        "container/energy_bench/energy/meter.py",
        "SHORT_WINDOW_UPDATES = 10",
        "SHORT_WINDOW_UPDATES = 2",
    ),
    (
        "successful_prompts from the best pass",
        "container/energy_bench/results/report.py",
        'successful = min((p["successful_prompts"]',
        'successful = max((p["successful_prompts"]',
    ),
    (
        "local runner log not redacted",
        "orchestrator/execution/runners/local.py",
        "pump = LogPump(log, Redactor(token))",
        "pump = LogPump(log, Redactor(None))",
    ),
    (
        "docker runner log not redacted",
        "orchestrator/execution/runners/docker.py",
        "pump = LogPump(log_file, Redactor(token))",
        "pump = LogPump(log_file, Redactor(None))",
    ),
    (
        "RAPL wrap-around ignored",
        "container/energy_bench/energy/sources.py",
        "                delta += self._max[i]\n",
        "                pass\n",
    ),
    (
        "NVML milliwatts as centiwatts",
        "container/energy_bench/energy/nvml.py",
        "return milliwatts / 1000.0",
        "return milliwatts / 100.0",
    ),
    (
        "end-of-sequence not counted",
        "container/energy_bench/backends/pytorch.py",
        "                return i + 1\n",
        "                return i\n",
    ),
    (
        "out of memory not exit 4",
        "container/energy_bench/contract.py",
        "OUT_OF_MEMORY = 4",
        "OUT_OF_MEMORY = 1",
    ),
    (
        "busy GPUs not skipped",
        "orchestrator/execution/gpus.py",
        "    if not skip_busy:\n        return chosen\n",
        "    return chosen\n",
    ),
]
XDIST = os.environ.get("XDIST", "").split()
MARK = os.environ.get("MARK", "not docker and not gpu and not slow")


def check(name: str, path: str, old: str, new: str) -> tuple[str, float, str]:
    """Make one bug in a scratch copy and run the suite there: (verdict, seconds, first failure)."""
    with tempfile.TemporaryDirectory(prefix="known-bugs-") as scratch:
        work = Path(scratch)
        copy_tree(work)
        module = work / path
        text = module.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{name}: {path} no longer holds the line to change, once")
        module.write_text(text.replace(old, new))
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *XDIST, "-x", "-q", "-p", "no:cacheprovider",
             "-m", MARK, "tests"],
            cwd=work, capture_output=True, text=True,
            # the scratch copy's packages, not an installed checkout's
            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{work}:{work}/container"},
        )  # fmt: skip
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    verdict = "caught" if done.returncode else "NOT CAUGHT"
    return verdict, time.monotonic() - started, failed[0] if failed else ""


def main(words: list[str]) -> int:
    """Check the bugs whose name holds one of ``words`` (all without); 1 if one is not caught."""
    rows = []
    for name, path, old, new in BUGS:
        if words and not any(word in name for word in words):
            continue
        verdict, took, failed = check(name, path, old, new)
        rows.append(f"{verdict:<11} {took:>4.0f} s  {name}  {failed}")
        print(rows[-1], flush=True)
    print("\n" + "\n".join(rows))
    return 0 if all(row.startswith("caught") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
