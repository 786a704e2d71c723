"""Put each known measurement bug back, one at a time, and check that the suite fails.

    python tools/known_bugs.py [WORDS ...]     # only the bugs whose name holds one of the words

Each bug is a one-line change (issue 18's list, and a few more in the code the issue names as
never executed) made in a scratch copy of the tree in /tmp/known-bugs; the default suite then
runs there (``MARK``, default: without Docker, GPU and slow tests; ``XDIST="-n 8"`` spreads it
where pytest-xdist is installed) and stops at its first failure. Prints "caught" with the first
failing test, or "NOT CAUGHT". Exit status 1 when a bug is not caught.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent
WORK = Path("/tmp/known-bugs")
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
only = sys.argv[1:]
rows = []
for name, path, old, new in BUGS:
    if only and not any(word in name for word in only):
        continue
    shutil.rmtree(WORK, ignore_errors=True)
    skip = shutil.ignore_patterns("build", ".whl", ".venv", ".git", "__pycache__")
    shutil.copytree(SRC, WORK, ignore=skip)
    module = WORK / path
    text = module.read_text()
    assert text.count(old) == 1, f"{name}: {path} no longer holds the line once"
    module.write_text(text.replace(old, new))
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *XDIST, "-x", "-q", "-p", "no:cacheprovider",
         "-m", MARK, "tests"],
        cwd=WORK, capture_output=True, text=True,
        # the scratch copy's packages, not an installed checkout's
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{WORK}:{WORK}/container"},
    )  # fmt: skip
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    verdict = "caught" if done.returncode else "NOT CAUGHT"
    rows.append((name, verdict, f"{time.time() - started:.0f} s", failed[:1]))
    print(*rows[-1], flush=True)
print()
for name, verdict, took, failed in rows:
    print(f"{verdict:<11} {took:>6}  {name}  {failed[0] if failed else ''}")
shutil.rmtree(WORK, ignore_errors=True)
sys.exit(1 if any(verdict != "caught" for _, verdict, _, _ in rows) else 0)
