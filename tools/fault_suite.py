"""Fault suite: "Nothing lost, nothing leaked, whatever fails".

    python tools/fault_suite.py [--only SUBSTRING] [--list] [--markdown] [--details]
                                [--root PATH] [--workdir DIR] [--keep]

Runs every fault of ``CASES`` against the CPU demo (the tiny offline model of
``examples/tiny-model``, the local runner, 2 bundled prompts, float32) and prints one table:
the fault, what the product promises, what was observed, and four counts that must stay zero:

- results lost: a run that was ``ok`` in the baseline is no longer ``ok`` with the same
  ``benchmark_report.json`` bytes (unless the fault is deliberately about that run);
- leaks: a canary secret (the ``HF_TOKEN`` every command gets, a token in ``.env``, a file
  outside the output folder, ...) found in a file under the output folder, inside an archive
  there, or in a command's output;
- tracebacks: "Traceback (most recent call last)" in a command's stdout or stderr;
- orphans: ``energy_bench`` processes of the case's folder still alive some seconds after the
  fault's command ended.

Each case is a small function registered in ``CASES`` (a ``Fault``); calling a ``Fault`` with
a ``Suite`` runs it in a fresh folder and returns its ``Observation``, so that
``tests/test_fault_suite.py`` runs the very same cases. One baseline sweep (the demo's two
``Off`` rows, ``energy.idle_seconds=1``) runs once; each case that needs earlier results works
on a copy of it. The CSV is the demo's, with the model folder made absolute and the ``On``
row's budget raised to an exact 100 tokens (250 in ``slow.csv``), so that a fault sent a few
seconds into that run lands while it runs. Cases that mount a tmpfs (a read-only or full file
system) need root and are skipped, with a note, where mounting is not permitted. Exit status:
0 only when every case that ran passed.

``--root`` points the suite at another checkout (its ``batch_runner.py`` and ``examples/``);
the commands then run that checkout's code (``PYTHONPATH=<root>:<root>/container``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from energy_bench import contract
from orchestrator.execution.runners.local import process_alive
from orchestrator.store.paths import RECORD_FILE, OutputLayout, ReportLayout

REPO = Path(__file__).resolve().parent.parent
TRACEBACK = "Traceback (most recent call last)"

# Canary secrets: each has a Hugging Face token's shape, none is a real one.
CANARY_ENV = "hf_FaultSuiteEnvCanary7Q2mX9pL4vR8sK1"  # HF_TOKEN of every command
CANARY_DOTENV = "hf_FaultSuiteDotenvCanary3Jd8Wq5Zr2"  # HF_TOKEN in a .env file
CANARY_FILE = "hf_FaultSuiteOutsideFileCanary6Tn4Bv"  # a file outside the output folder
TYPED_TOKEN = "hf_" + "Ab3dE5gH7jK9mN2pQ4sT6vW8yZ1cF0"  # typed into an override (30 characters)
CANARIES = (CANARY_ENV, CANARY_DOTENV, CANARY_FILE, TYPED_TOKEN)

OVERRIDES = (
    "backend.torch_dtype=float32",
    "scenario.dataset_name=bundled",
    "energy.idle_seconds=1",
)
PROMPTS = "2"
MEASURING_S = 6.0  # after its start, a benchmark of the On row has loaded and measures
HEADER = ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
OFF, OFF_NA, ON = "tiny-model_Off", "tiny-model_Off_N_A", "tiny-model_On"
BASELINE_RUNS = (OFF, OFF_NA)
MATHTEXT = r"$\undefinedcmd{x}$"
SCRIPT = "<script>alert(1)</script>"


def demo_csv(model: Path, on_tokens: int) -> str:
    """The demo CSV with an absolute model folder and an exact budget for the ``On`` row."""
    return (
        HEADER
        + f",{model},1,A,text_gen,Off,N/A (default)\n"
        + f',{model},1,A,text_gen,On,"reasoning: True\nmax_new_tokens: {on_tokens}\n'
        + f'min_new_tokens: {on_tokens}"\n'
        + f",{model},2,A,text_gen,Off (N/A),N/A\n"
    )


class SuiteError(RuntimeError):
    """The suite itself cannot go on (the baseline sweep failed)."""


class SkipCase(Exception):
    """The case cannot run here (for instance: mounting is not permitted)."""


@dataclass
class Command:
    """One finished command: its arguments, exit status, output and duration."""

    argv: list[str]
    code: int | None
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err

    def error_lines(self) -> list[str]:
        """The lines of stderr that are not log records (what a user reads as the error)."""
        logs = ("DEBUG ", "INFO ", "WARNING ")
        return [ln for ln in self.err.splitlines() if ln.strip() and not ln.startswith(logs)]

    def first_error(self) -> str:
        lines = [ln for ln in self.err.splitlines() if "error" in ln.lower()]
        return (lines or self.error_lines() or [""])[0].strip()

    def describe(self, root: Path) -> str:
        shown = " ".join(a if " " not in a else repr(a) for a in self.argv)
        shown = shown.replace(sys.executable, "python").replace(str(root) + "/", "")
        tail = [f"    err| {ln}" for ln in self.err.splitlines()[-10:]]
        tail += [f"    out| {ln}" for ln in self.out.splitlines()[-6:]]
        return "\n".join(
            [f"  $ {shown}", f"    -> exit {self.code} in {self.seconds:.1f} s", *tail]
        )


@dataclass
class Observation:
    """What one case observed, and the counts that must stay zero."""

    fault: str
    expected: str
    observed: str = ""
    ok: bool = False
    lost: int = 0
    leaks: int = 0
    tracebacks: int = 0
    orphans: int = 0
    skipped: str = ""
    seconds: float = 0.0
    details: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        clean = not (self.lost or self.leaks or self.tracebacks or self.orphans)
        return not self.skipped and self.ok and clean

    @property
    def verdict(self) -> str:
        return "skip" if self.skipped else "yes" if self.passed else "NO"

    def report(self) -> str:
        counts = (
            f"lost {self.lost}, leaks {self.leaks}, tracebacks {self.tracebacks}, "
            f"orphans {self.orphans}"
        )
        lines = [f"{self.fault}: expected {self.expected}", f"observed: {self.observed}", counts]
        return "\n".join(lines + self.details)


@dataclass(frozen=True)
class Fault:
    """One fault: its name, the product's promise, and the function that tries it."""

    name: str
    expected: str
    run: Callable[[Trial], None]
    targets: tuple[str, ...] = ()  # baseline runs the fault is deliberately about
    mounts: bool = False  # needs to mount a tmpfs (root)

    def __call__(self, suite: Suite) -> Observation:
        """Try this fault in a fresh folder of ``suite``: its observation record."""
        return suite.run_case(self)


CASES: list[Fault] = []


def fault(
    name: str, expected: str, *, targets: tuple[str, ...] = (), mounts: bool = False
) -> Callable[[Callable[[Trial], None]], Callable[[Trial], None]]:
    """Register a case function under ``name``."""

    def register(run: Callable[[Trial], None]) -> Callable[[Trial], None]:
        CASES.append(Fault(name, expected, run, targets, mounts))
        return run

    return register


# ----------------------------------------------------------------------------- processes


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def bench_pids(folder: Path) -> list[int]:
    """The live ``energy_bench`` processes whose command line names a path under ``folder``."""
    prefix = str(folder) + os.sep
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        line = _cmdline(int(entry.name))
        if "energy_bench" in line and prefix in line and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def _results_dir(pid: int) -> Path | None:
    parts = _cmdline(pid).split()
    with contextlib.suppress(ValueError, IndexError):
        return Path(parts[parts.index("--results-dir") + 1])
    return None


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


# ----------------------------------------------------------------------------- the suite


class Suite:
    """The shared state of a run of the suite: the checkout, the work folder, the baseline."""

    def __init__(self, root: Path = REPO, work: Path | None = None, *, keep: bool = False) -> None:
        self.root = root.resolve()
        self.keep = keep or work is not None
        self.work = Path(work or tempfile.mkdtemp(prefix="fault_suite_")).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.model = self.root / "examples" / "tiny-model"
        self.csv = self.work / "demo.csv"
        self.csv.write_text(demo_csv(self.model, 100))
        self.slow_csv = self.work / "slow.csv"
        self.slow_csv.write_text(demo_csv(self.model, 1000))  # outlasts a kill at MEASURING_S
        self._baseline: Path | None = None
        self._baseline_error = ""
        self.baseline_reports: dict[str, bytes] = {}
        self._mount: bool | None = None

    # -- commands

    def env(self, **changes: str | None) -> dict[str, str]:
        """A command's environment: offline, a canary token, nothing of the caller's settings."""
        drop = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "PYTHONPATH")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AI_ENERGY_SCORE_") and k not in drop
        }
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200", HF_TOKEN=CANARY_ENV)
        if self.root != REPO:  # another checkout: its code, not the installed one
            env["PYTHONPATH"] = f"{self.root}{os.pathsep}{self.root / 'container'}"
        elif os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        for key, value in changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    @property
    def cli(self) -> list[str]:
        """The command line's start: this interpreter and the checkout's batch_runner.py."""
        return [sys.executable, str(self.root / "batch_runner.py")]

    def sweep_argv(
        self,
        out: Path,
        *options: str,
        csv_path: Path | None = None,
        overrides: tuple[str, ...] = (),
    ) -> list[str]:
        return [
            *self.cli,
            "--csv",
            str(csv_path or self.csv),
            "--output-dir",
            str(out),
            "--runner",
            "local",
            "-n",
            PROMPTS,
            *options,
            *OVERRIDES,
            *overrides,
        ]

    def run_argv(self, out: Path) -> list[str]:
        return [
            *self.cli,
            "run",
            "--model",
            str(self.model),
            "--output-dir",
            str(out),
            "--runner",
            "local",
            "-n",
            PROMPTS,
            *OVERRIDES,
        ]

    def report_argv(self, out: Path) -> list[str]:
        return [
            *self.cli,
            "report",
            "--output-dir",
            str(out),
        ]

    # -- the baseline

    def baseline(self) -> Path:
        """The output folder of the baseline sweep (the demo's two ``Off`` rows), made once."""
        if self._baseline is not None:
            return self._baseline
        if self._baseline_error:
            raise SuiteError(self._baseline_error)
        out = self.work / "baseline" / "out"
        shutil.rmtree(out.parent, ignore_errors=True)
        out.parent.mkdir(parents=True)
        argv = self.sweep_argv(out, "--reasoning-state", "Off")
        proc = subprocess.run(
            argv, cwd=out.parent, env=self.env(), capture_output=True, text=True, timeout=600
        )
        rows = master_rows(out)
        ok = [n for n in BASELINE_RUNS if rows.get(n, {}).get("status") == "ok"]
        if proc.returncode != 0 or len(ok) != len(BASELINE_RUNS):
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            self._baseline_error = f"baseline sweep failed: exit {proc.returncode}; {tail}"
            raise SuiteError(self._baseline_error)
        for name in BASELINE_RUNS:
            self.baseline_reports[name] = (OutputLayout(out).run_dir(name) / REPORT).read_bytes()
        self._baseline = out
        return out

    # -- mounts

    def can_mount(self) -> bool:
        """True when this process may mount a tmpfs (root, and a kernel that lets it)."""
        if self._mount is None:
            self._mount = False
            if os.geteuid() == 0 and shutil.which("mount"):
                probe = Path(tempfile.mkdtemp(prefix="mount_probe_", dir=self.work))
                done = subprocess.run(
                    ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                    capture_output=True,
                    check=False,
                )
                if done.returncode == 0:
                    subprocess.run(["umount", str(probe)], check=False)
                    self._mount = True
                probe.rmdir()
        return self._mount

    # -- a case

    def run_case(self, case: Fault) -> Observation:
        """Run one case in a fresh folder and count what it lost, leaked and left behind."""
        obs = Observation(case.name, case.expected)
        if case.mounts and not self.can_mount():
            obs.skipped = "mounting a tmpfs is not permitted here (needs root)"
            obs.observed = "skipped: " + obs.skipped
            return obs
        started = time.monotonic()
        trial = Trial(self, case)
        try:
            try:
                case.run(trial)
            except SkipCase as exc:
                obs.skipped = str(exc)
            except SuiteError as exc:
                trial.failures.append(str(exc))
            except Exception as exc:  # a surprise in the case itself: shown, never hidden
                trial.failures.append(f"suite error: {exc!r}")
                obs.details.append(traceback.format_exc())
            trial.stop_commands()
            trial.settle_orphans(trial.orphan_wait)
            obs.lost = trial.count_lost()
            obs.leaks = trial.count_leaks()
            obs.tracebacks = sum(c.text.count(TRACEBACK) for c in trial.commands)
        finally:
            trial.clean_up()
        obs.orphans = trial.orphans
        obs.ok = not trial.failures
        observed = "; ".join(trial.failures + trial.notes) or "as expected"
        obs.observed = observed.replace(str(trial.dir) + "/", "").replace(str(self.work) + "/", "")
        if obs.skipped:
            obs.observed = "skipped: " + obs.skipped
        obs.details += trial.extra + [c.describe(self.root) for c in trial.commands]
        obs.seconds = time.monotonic() - started
        return obs

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.work, ignore_errors=True)


REPORT = contract.REPORT_FILE
RECORD = RECORD_FILE


class Trial:
    """One case's folder, commands, notes and expectations."""

    def __init__(self, suite: Suite, case: Fault) -> None:
        self.suite, self.case = suite, case
        self.dir = suite.work / case.name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.out = self.dir / "out"
        self.out_dirs = [self.out]  # scanned for leaks
        self.copies: list[Path] = []  # baseline copies: checked for lost results
        self.commands: list[Command] = []
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.extra: list[str] = []
        self.markers = list(CANARIES)
        self.orphan_wait = 3.0
        self.orphans = 0
        self._procs: list[tuple[subprocess.Popen[bytes], list[str], float, Path, Path]] = []
        self._cleanups: list[Callable[[], None]] = []
        self._count = 0

    # -- notes and expectations

    def note(self, text: str) -> None:
        self.notes.append(text)

    def expect(self, condition: bool, failure: str) -> bool:
        if not condition:
            self.failures.append(failure)
        return condition

    def defer(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    # -- folders

    def from_baseline(self, out: Path | None = None) -> Path:
        """A copy of the baseline's output folder (``out`` by default)."""
        out = out or self.out
        shutil.copytree(self.suite.baseline(), out, symlinks=True, dirs_exist_ok=True)
        self.copies.append(out)
        return out

    def run_dir(self, name: str, out: Path | None = None) -> Path:
        return OutputLayout(out or self.out).run_dir(name)

    # -- commands

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a command in its own session, its output going to files of the case folder."""
        self._count += 1
        out_file = self.dir / f"cmd{self._count}.out"
        err_file = self.dir / f"cmd{self._count}.err"
        with out_file.open("wb") as out, err_file.open("wb") as err:
            proc = subprocess.Popen(
                argv,
                cwd=self.dir,
                env=env or self.suite.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self._procs.append((proc, argv, time.monotonic(), out_file, err_file))
        return proc

    def finish(self, proc: subprocess.Popen[bytes], timeout: float = 300) -> Command:
        """Wait for a started command; kill it (and say so) when it outlives ``timeout``."""
        entry = next(e for e in self._procs if e[0] is proc)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.failures.append(f"{Path(entry[1][1]).name} still running after {timeout:.0f} s")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self._procs.remove(entry)
        command = Command(
            entry[1],
            proc.returncode,
            entry[3].read_text(errors="replace"),
            entry[4].read_text(errors="replace"),
            time.monotonic() - entry[2],
        )
        self.commands.append(command)
        return command

    def run(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 300
    ) -> Command:
        return self.finish(self.start(argv, env), timeout)

    def stop_commands(self) -> None:
        """Kill the commands the case left running (a case that failed half-way)."""
        for proc, *_ in list(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            self.finish(proc, timeout=30)

    def wait_for_bench(self, sweep: subprocess.Popen[bytes], timeout: float = 120) -> int:
        """The pid of the first benchmark process of this case (waits for one to start)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = bench_pids(self.dir)
            if pids:
                return pids[0]
            if sweep.poll() is not None:
                raise SuiteError(f"the sweep ended (exit {sweep.returncode}) before a run started")
            time.sleep(0.1)
        raise SuiteError(f"no benchmark process within {timeout:.0f} s")

    def settle_orphans(self, wait_s: float) -> int:
        """Wait up to ``wait_s`` s for the case's benchmarks to end; kill and count those left."""
        deadline = time.monotonic() + wait_s
        while True:
            pids = bench_pids(self.dir)
            if not pids or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        for pid in pids:
            self.extra.append(f"  orphan: pid {pid}: {_cmdline(pid)[:300]}")
            _kill(pid)
        self.orphans += len(pids)
        return len(pids)

    # -- counts

    def count_lost(self) -> int:
        """Baseline runs that are no longer ``ok`` with their report intact."""
        lost = 0
        for out in self.copies:
            for name in BASELINE_RUNS:
                if name in self.case.targets:
                    continue
                folder = self.run_dir(name, out)
                record = read_json(folder / RECORD)
                try:
                    same = (folder / REPORT).read_bytes() == self.suite.baseline_reports[name]
                except OSError:
                    same = False
                status = record.get("status") if isinstance(record, dict) else None
                if not same or status != "ok":
                    lost += 1
                    self.failures.append(f"lost {name} (record {status}, report same: {same})")
        return lost

    def count_leaks(self) -> int:
        """Places (files, archive members, command outputs) holding a canary or marker."""
        markers = [m.encode() for m in self.markers if m]
        places = []
        for out in self.out_dirs:
            for path, data in _files(out):
                if any(m in data for m in markers):
                    places.append(str(path.relative_to(self.dir)))
        for i, command in enumerate(self.commands, 1):
            if any(m in command.text.encode() for m in markers):
                places.append(f"output of command {i}")
        if places:
            self.failures.append("leaked into " + ", ".join(places[:4]))
        return len(places)

    # -- mounts

    def mount_tmpfs(self, where: Path, options: str) -> None:
        """Mount a tmpfs on ``where`` (unmounted when the case ends); skip where not permitted."""
        if not self.suite.can_mount():
            raise SkipCase("mounting a tmpfs is not permitted here (needs root)")
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SkipCase(f"mount -o {options} refused: {done.stderr.strip()}")
        self.defer(lambda: _unmount(where))

    def clean_up(self) -> None:
        for cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as exc:
                self.extra.append(f"  cleanup failed: {exc!r}")
        self._cleanups.clear()


def _unmount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _files(folder: Path) -> Iterator[tuple[Path, bytes]]:
    """Every regular file under ``folder`` (symbolic links not followed), and archive members."""
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            yield path, data + path.name.encode()
            if zipfile.is_zipfile(io.BytesIO(data)):
                yield from _members(path, data)


def _members(path: Path, data: bytes) -> Iterator[tuple[Path, bytes]]:
    """Each member of the archive ``data`` (read from ``path``) with its name appended."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [(m.filename, archive.read(m)) for m in archive.infolist()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    for name, inner in members:
        yield path / name, inner + name.encode()


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def master_rows(out: Path) -> dict[str, dict[str, str]]:
    """The master CSV's rows by run name (empty when it is missing or unreadable)."""
    try:
        with (OutputLayout(out).master_csv).open(newline="") as f:
            return {r.get("run_name", ""): r for r in csv.DictReader(f)}
    except (OSError, csv.Error):
        return {}


def sweep_logs(out: Path) -> str:
    """The text of every sweep log of an output folder."""
    return "".join(
        p.read_text(errors="replace") for p in OutputLayout(out).logs.glob("sweep_*.log")
    )


def report_layout(out: Path) -> ReportLayout:
    """Where ``report`` writes for the output folder ``out``."""
    return ReportLayout(OutputLayout(out).report)


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file of the runs, the logs and the master CSV."""
    files = {}
    for sub in (OutputLayout(out).runs, OutputLayout(out).logs):
        for path in sub.rglob("*"):
            if path.is_file():
                info = path.stat()
                files[str(path.relative_to(out))] = (info.st_size, info.st_mtime_ns)
    master = OutputLayout(out).master_csv
    if master.is_file():
        files[master.name] = (master.stat().st_size, master.stat().st_mtime_ns)
    return files


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ----------------------------------------------------------------------------- shared steps


def refused(t: Trial, command: Command, *, within: float = 30.0, one_line: bool = False) -> None:
    """Expect exit 2 within ``within`` s (with a one-line error when asked)."""
    t.note(f"exit {command.code} in {command.seconds:.1f} s: {_clip(command.first_error(), 110)}")
    t.expect(command.code == 2, f"exit {command.code} (expected 2)")
    t.expect(command.seconds <= within, f"took {command.seconds:.0f} s (expected <= {within:.0f})")
    if one_line:
        lines = command.error_lines()
        t.expect(len(lines) == 1, f"{len(lines)} error lines (expected one)")


def nothing_started(t: Trial, before: dict[str, tuple[int, int]]) -> None:
    after = snapshot(t.out)
    changed = sorted(k for k in after.keys() | before.keys() if after.get(k) != before.get(k))
    t.expect(not changed, f"files changed: {', '.join(changed[:3])}")


def refuse_sweep(t: Trial, *options: str, overrides: tuple[str, ...] = (), **kw: object) -> Command:
    """On a copy of the baseline: a sweep that must stop with exit 2 and touch nothing."""
    t.from_baseline()
    before = snapshot(t.out)
    command = t.run(
        t.suite.sweep_argv(t.out, "--reasoning-state", "Off", *options, overrides=overrides)
    )
    refused(t, command, **kw)  # type: ignore[arg-type]
    nothing_started(t, before)
    return command


def status_of(t: Trial, name: str, out: Path | None = None) -> str:
    record = read_json(t.run_dir(name, out) / RECORD)
    return str(record.get("status")) if isinstance(record, dict) else "no record"


def expect_row(
    t: Trial, name: str, status: str, cause: str | None = None, out: Path | None = None
) -> None:
    """Expect the master CSV's row of run ``name`` to have this status (and cause)."""
    row = master_rows(out or t.out).get(name)
    if row is None:
        t.expect(False, f"{name}: no master row (record {status_of(t, name, out)})")
        return
    got = f"{row.get('status')}/{row.get('cause')}"
    want = f"{status}/{cause}" if cause else status
    t.expect(got == want or (not cause and row.get("status") == status), f"{name}: {got} ({want}?)")


def rerun_completes(t: Trial, *options: str, csv_path: Path | None = None) -> Command:
    """A plain rerun of the whole demo CSV: exit 0, every run ok."""
    rerun = t.run(t.suite.sweep_argv(t.out, "--no-report", *options, csv_path=csv_path))
    t.note(f"rerun exit {rerun.code}")
    t.expect(rerun.code == 0, f"rerun exit {rerun.code} (expected 0)")
    for name in (OFF, OFF_NA, ON):
        expect_row(t, name, "ok")
    return rerun


def clone_run(t: Trial, source: str, name: str, **changes: object) -> Path:
    """A copy of run folder ``source`` as ``name``, its record changed as asked."""
    folder = t.run_dir(name)
    shutil.copytree(t.run_dir(source), folder, symlinks=True)
    record = json.loads((folder / RECORD).read_text())
    run_id = hashlib.sha256(name.encode()).hexdigest()[:12]
    record.update(name=name, run_id=run_id, **changes)
    (folder / RECORD).write_text(json.dumps(record, indent=2))
    return folder


def edit_record(t: Trial, name: str, **changes: object) -> None:
    path = t.run_dir(name) / RECORD
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record, indent=2))


def report_ok(t: Trial) -> Command:
    """``batch_runner.py report`` on the case folder: exit 0 and a leaderboard page."""
    command = t.run(t.suite.report_argv(t.out), timeout=240)
    t.note(f"report exit {command.code}")
    t.expect(command.code == 0, f"report exit {command.code}: {_clip(command.first_error(), 100)}")
    t.expect(report_layout(t.out).leaderboard_html.is_file(), "no leaderboard.html")
    return command


def corrupt_then_rerun(t: Trial, damage: Callable[[Path], None]) -> None:
    """Damage the ``Off`` run, then: report, a sweep of the other row, a sweep that reruns it."""
    t.from_baseline()
    damage(t.run_dir(OFF))
    report_ok(t)
    other = t.run(t.suite.sweep_argv(t.out, "--no-report", "--reasoning-state", "N/A"))
    t.expect(other.code == 0, f"sweep of the other row: exit {other.code}")
    row = master_rows(t.out).get(OFF, {})
    t.note(f"master row: {row.get('status', 'none')}")
    t.expect(row.get("status") == "corrupt_result", f"master row {row.get('status')!r}")
    rerun = t.run(t.suite.sweep_argv(t.out, "--no-report", "--reasoning-state", "Off"))
    t.expect(rerun.code == 0, f"rerun exit {rerun.code}")
    row = master_rows(t.out).get(OFF, {})
    t.note(f"after the rerun: {row.get('status', 'none')}")
    t.expect(row.get("status") == "ok", f"not rerun: {row.get('status')!r}")


def interrupt(t: Trial, send: Callable[[subprocess.Popen[bytes]], None]) -> None:
    """Stop a sweep of the demo while its ``On`` run measures; then rerun it."""
    t.from_baseline()
    sweep = t.start(t.suite.sweep_argv(t.out, "--no-report"))
    t.wait_for_bench(sweep)
    time.sleep(2)
    send(sweep)
    command = t.finish(sweep, timeout=120)
    status = status_of(t, ON)
    rows = master_rows(t.out)
    t.note(f"exit {command.code} in {command.seconds:.0f} s; {ON} record {status}")
    t.expect(command.code == 130, f"exit {command.code} (expected 130)")
    t.expect(status == "interrupted", f"{ON} record {status} (expected interrupted)")
    t.expect(
        sorted(rows) == sorted(BASELINE_RUNS) and {r["status"] for r in rows.values()} == {"ok"},
        f"master rows {sorted((n, r['status']) for n, r in rows.items())}",
    )
    left = t.settle_orphans(15)
    t.note(f"{left} benchmark(s) left 15 s later")
    rerun_completes(t)


def killpg(sig: int, times: int = 1) -> Callable[[subprocess.Popen[bytes]], None]:
    """Send ``sig`` to the sweep's process group ``times`` times (as a terminal's Ctrl-C does)."""

    def send(proc: subprocess.Popen[bytes]) -> None:
        for i in range(times):
            if i:
                time.sleep(0.3)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)

    return send


def write_models(t: Trial, rows: str) -> Path:
    path = t.dir / "models.csv"
    path.write_text(HEADER + rows)
    return path


def names_line(t: Trial, command: Command, csv_path: Path, line: int | None) -> None:
    where = f"{csv_path.name}:{line}" if line else f"{csv_path.name}:"
    t.expect(where in command.err, f"the error does not name {where}")


# ----------------------------------------------------------------------------- the cases


@fault("override_key_typo", "exit 2 before anything starts; earlier results untouched")
def _override_key_typo(t: Trial) -> None:
    refuse_sweep(t, overrides=("scenario.nmu_samples=3",))


@fault("override_wrong_type", "exit 2 before anything starts")
def _override_wrong_type(t: Trial) -> None:
    refuse_sweep(t, overrides=("scenario.num_samples=ten",))


@fault("override_backend_model", "exit 2: the model comes from the CSV")
def _override_backend_model(t: Trial) -> None:
    refuse_sweep(t, overrides=("backend.model=other",))


@fault("override_token_shaped", "exit 2; the token in no output and no file")
def _override_token_shaped(t: Trial) -> None:
    refuse_sweep(t, overrides=(f"scenario.dataset_name={TYPED_TOKEN}",))


@fault("absurd_token_budget", "exit 2 before anything starts")
def _absurd_budget(t: Trial) -> None:
    refuse_sweep(t, overrides=("scenario.generate_kwargs.max_new_tokens=1e20",))


@fault("csv_missing_model_folder", "exit 2 naming file:line")
def _csv_missing_model(t: Trial) -> None:
    models = write_models(
        t,
        f",{t.suite.model},1,A,text_gen,Off,N/A (default)\n"
        f",{t.dir / 'no-such-model'},1,A,text_gen,Off (N/A),N/A\n",
    )
    t.from_baseline()
    before = snapshot(t.out)
    command = t.run(t.suite.sweep_argv(t.out, csv_path=models))
    refused(t, command)
    names_line(t, command, models, 3)
    nothing_started(t, before)


@fault("max_parallel_zero", "exit 2 within seconds, nothing started")
def _max_parallel_zero(t: Trial) -> None:
    refuse_sweep(t, "--max-parallel", "0")


@fault("max_parallel_negative", "exit 2 within seconds, nothing started")
def _max_parallel_negative(t: Trial) -> None:
    refuse_sweep(t, "--max-parallel", "-1")


@fault("zero_prompts", "exit 2 within seconds, nothing started")
def _zero_prompts(t: Trial) -> None:
    refuse_sweep(t, "-n", "0")


@fault("negative_timeout", "exit 2 within seconds, nothing started")
def _negative_timeout(t: Trial) -> None:
    refuse_sweep(t, "--timeout", "-1")


@fault("sigkill_benchmark", "that run fails (killed), the sweep goes on, exit 1, others ok")
def _sigkill_benchmark(t: Trial) -> None:
    sweep = t.start(
        t.suite.sweep_argv(t.out, "--no-report", "--retries", "0", "--reasoning-state", "Off")
    )
    pid = t.wait_for_bench(sweep)
    results = _results_dir(pid)
    time.sleep(2)
    _kill(pid)
    command = t.finish(sweep, timeout=180)
    rows = master_rows(t.out)
    killed = results.relative_to(OutputLayout(t.out).runs).parts[0] if results else "?"
    other = next(n for n in BASELINE_RUNS if n != killed)
    got = rows.get(killed, {})
    t.note(f"exit {command.code}; {killed} {got.get('status')}/{got.get('cause')}")
    t.note(f"{other} {rows.get(other, {}).get('status')}")
    t.expect(command.code == 1, f"exit {command.code} (expected 1)")
    expect_row(t, killed, "failed", "killed")
    expect_row(t, other, "ok")


@fault("sigterm_sweep", "exit 130, running run interrupted, no orphan in 15 s, rerun completes")
def _sigterm_sweep(t: Trial) -> None:
    interrupt(t, lambda proc: proc.send_signal(signal.SIGTERM))


@fault("sigint_once", "as SIGTERM: exit 130, interrupted, no orphan, rerun completes")
def _sigint_once(t: Trial) -> None:
    interrupt(t, killpg(signal.SIGINT))


@fault("sigint_twice", "as SIGTERM: exit 130, interrupted, no orphan, rerun completes")
def _sigint_twice(t: Trial) -> None:
    interrupt(t, killpg(signal.SIGINT, times=2))


@fault(
    "sigkill_sweep_heartbeat",
    "the benchmark stops itself (heartbeat 4 s), none left 20 s later; rerun settles and completes",
)
def _sigkill_sweep_heartbeat(t: Trial) -> None:
    t.from_baseline()
    env = t.suite.env(AI_ENERGY_SCORE_HEARTBEAT_S="4")
    sweep = t.start(t.suite.sweep_argv(t.out, "--no-report", csv_path=t.suite.slow_csv), env)
    pid = t.wait_for_bench(sweep)
    time.sleep(MEASURING_S)
    ended = f"the benchmark had ended {MEASURING_S:g} s in, sweep alive"
    alive = t.expect(process_alive(pid), ended)
    sweep.kill()
    killed = time.monotonic()
    t.finish(sweep)
    left = t.settle_orphans(20)
    gone = time.monotonic() - killed
    if alive:
        t.note(f"benchmark gone {gone:.0f} s after the kill" if not left else "still there at 20 s")
    t.note(f"it said: {_clip(ended_how(t, ON), 70)}; record {status_of(t, ON)}")
    rerun = rerun_completes(t, csv_path=t.suite.slow_csv)
    logs = "".join(
        p.read_text(errors="replace") for p in (OutputLayout(t.out).logs).glob("sweep_*.log")
    )
    settled = re.search(rf"{ON}\b[^\n]*interrupted", rerun.text + logs) is not None
    t.expect(settled, f"the rerun did not say {ON} was marked interrupted")


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def ended_how(t: Trial, name: str) -> str:
    """The error in the newest failure report of run ``name`` (its folder's or an attempt's)."""
    folder = t.run_dir(name)
    paths = [folder / REPORT, *folder.glob("attempts/*/" + REPORT)]
    for path in sorted((p for p in paths if p.is_file()), key=_mtime, reverse=True):
        report = read_json(path)
        error = report.get("error") if isinstance(report, dict) else None
        if isinstance(error, dict):
            return f"{error.get('type')}: {error.get('message')}"
    return "no failure report"


@fault(
    "sigkill_sweep_rerun_at_once", "the rerun stops the leftover benchmark first, then completes"
)
def _sigkill_sweep_rerun(t: Trial) -> None:
    t.from_baseline()
    sweep = t.start(t.suite.sweep_argv(t.out, "--no-report", csv_path=t.suite.slow_csv))
    pid = t.wait_for_bench(sweep)
    time.sleep(MEASURING_S)
    sweep.kill()
    t.finish(sweep)
    alive_at_rerun = process_alive(pid)
    rerun = t.start(t.suite.sweep_argv(t.out, "--no-report", csv_path=t.suite.slow_csv))
    beside = False
    while rerun.poll() is None:
        if process_alive(pid) and [p for p in bench_pids(t.dir) if p != pid]:
            beside = True
        time.sleep(0.1)
    command = t.finish(rerun)
    t.note(f"leftover alive at rerun: {alive_at_rerun}; ran beside the new run: {beside}")
    t.note(f"rerun exit {command.code}")
    t.expect(alive_at_rerun, "the leftover ended before the rerun (nothing to stop)")
    t.expect(not beside, "the leftover benchmark ran beside the rerun's")
    t.expect(not process_alive(pid), "the leftover benchmark is still alive")
    t.expect(command.code == 0, f"rerun exit {command.code}")
    expect_row(t, ON, "ok")


@fault(
    "short_heartbeat_live_sweep",
    "a heartbeat of 4 s never stops the run of a sweep that is alive: it completes",
)
def _short_heartbeat_live_sweep(t: Trial) -> None:
    t.from_baseline()
    env = t.suite.env(AI_ENERGY_SCORE_HEARTBEAT_S="4")
    command = t.run(t.suite.sweep_argv(t.out, "--no-report", "--reasoning-state", "On"), env)
    record = read_json(t.run_dir(ON) / RECORD)
    said = record.get("error_message", "") if isinstance(record, dict) else ""
    t.note(f"exit {command.code}; {ON} record {status_of(t, ON)}: {_clip(said, 90)}")
    t.expect(command.code == 0, f"exit {command.code} (expected 0)")
    expect_row(t, ON, "ok")


@fault("two_sweeps_one_folder", "the second exits 2 with one 'in use' line; the first completes")
def _two_sweeps(t: Trial) -> None:
    t.from_baseline()
    argv = t.suite.sweep_argv(t.out, "--no-report")
    first = t.start(argv)
    t.wait_for_bench(first)
    second = t.run(argv, timeout=60)
    refused(t, second, one_line=True)
    t.expect("in use" in second.err, "no 'in use' in the error")
    done = t.finish(first, timeout=240)
    t.note(f"first exit {done.code}")
    t.expect(done.code == 0, f"first sweep exit {done.code}")
    expect_row(t, ON, "ok")


@fault("run_beside_sweep", "`run` into a folder a sweep holds: exit 2")
def _run_beside_sweep(t: Trial) -> None:
    t.from_baseline()
    sweep = t.start(t.suite.sweep_argv(t.out, "--no-report"))
    t.wait_for_bench(sweep)
    single = t.run(t.suite.run_argv(t.out), timeout=60)
    refused(t, single)
    done = t.finish(sweep, timeout=240)
    t.note(f"sweep exit {done.code}")
    t.expect(done.code == 0, f"sweep exit {done.code}")


@fault(
    "record_duration_text",
    "report and sweep go on; the run is corrupt_result, then rerun",
    targets=(OFF,),
)
def _record_duration_text(t: Trial) -> None:
    def damage(folder: Path) -> None:
        record = json.loads((folder / RECORD).read_text())
        record["duration_s"] = "abc"
        (folder / RECORD).write_text(json.dumps(record))

    corrupt_then_rerun(t, damage)


@fault("report_empty_summary", "corrupt_result, no crash, rerun", targets=(OFF,))
def _report_empty_summary(t: Trial) -> None:
    def damage(folder: Path) -> None:
        (folder / REPORT).write_text('{"status":"ok","summary":{},"energy":{}}')

    corrupt_then_rerun(t, damage)


@fault("report_not_json", "corrupt_result, no crash, rerun", targets=(OFF,))
def _report_not_json(t: Trial) -> None:
    def damage(folder: Path) -> None:
        (folder / REPORT).write_bytes(b"\x00\xffnot json {{{")

    corrupt_then_rerun(t, damage)


@fault("power_trace_garbage", "`report` still succeeds")
def _power_trace_garbage(t: Trial) -> None:
    t.from_baseline()
    for name in BASELINE_RUNS:
        garbage = b"t_s,power_w\nabc,\x00\xff\n,,,,,,,,\n"
        (t.run_dir(name) / contract.POWER_TRACE_FILE).write_bytes(garbage)
    report_ok(t)
    t.expect(zipfile.is_zipfile(report_layout(t.out).archive), "no archive")


@fault("mathtext_model_name", "`report` still writes the other runs' labels and the archive")
def _mathtext_model_name(t: Trial) -> None:
    # Each clone is alone in its rating group (class B, class C) and unsuspect, so both are
    # rated and labelled: the demo's own short runs are often suspect, hence not labelled.
    t.from_baseline()
    rated_clone(t, "tiny-model_Math", model_id=MATHTEXT, model_name=MATHTEXT, model_class="B")
    rated_clone(t, "tiny-model_Plain", model_class="C")
    labels = report_layout(t.out).labels
    shutil.rmtree(labels, ignore_errors=True)
    report_ok(t)
    drawn = sorted(p.stem for p in labels.glob("*.png")) if labels.is_dir() else []
    t.note(f"labels {drawn}")
    t.expect("tiny-model_Plain" in drawn, "no label of the other rated run (tiny-model_Plain)")
    t.expect(zipfile.is_zipfile(report_layout(t.out).archive), "no archive")


def rated_clone(t: Trial, name: str, **changes: object) -> None:
    """A clone of the ``Off (N/A)`` run whose report raises no suspect flag."""
    folder = clone_run(t, OFF_NA, name, **changes)
    report = json.loads((folder / REPORT).read_text())
    flags = report.get("energy", {}).get("flags")
    if isinstance(flags, dict):
        report["energy"]["flags"] = dict.fromkeys(flags, False)
    (folder / REPORT).write_text(json.dumps(report))


@fault("readonly_output_folder", "exit 2, one line, no traceback", mounts=True)
def _readonly_output_folder(t: Trial) -> None:
    t.mount_tmpfs(t.out, "ro,size=1m")
    command = t.run(t.suite.sweep_argv(t.out, "--reasoning-state", "Off"))
    refused(t, command, one_line=True)


@fault(
    "readonly_run_folder",
    "that run fails alone (permission_denied); the others complete",
    mounts=True,
)
def _readonly_run_folder(t: Trial) -> None:
    t.mount_tmpfs(t.run_dir(OFF_NA), "ro,size=1m")
    command = t.run(t.suite.sweep_argv(t.out, "--no-report", "--reasoning-state", "Off"))
    logs = "".join(
        p.read_text(errors="replace") for p in (OutputLayout(t.out).logs).glob("sweep_*.log")
    )
    row = master_rows(t.out).get(OFF_NA, {})
    named = "permission_denied" in command.text + logs + json.dumps(row)
    t.note(f"exit {command.code}; {OFF} {master_rows(t.out).get(OFF, {}).get('status')}")
    t.note(f"permission_denied said: {named}")
    t.expect(command.code == 1, f"exit {command.code} (expected 1)")
    t.expect(named, f"{OFF_NA}: no permission_denied anywhere")
    expect_row(t, OFF, "ok")


@fault("disk_full", "runs fail (disk_full) or one error line; nothing lost", mounts=True)
def _disk_full(t: Trial) -> None:
    full = t.dir / "full"
    t.mount_tmpfs(full, "size=3m")
    out = full / "out"
    t.from_baseline(out)
    t.out_dirs = [out]
    with contextlib.suppress(OSError), (full / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
    with contextlib.suppress(OSError), (full / "filler").open("ab") as filler:
        while True:  # the last pages
            filler.write(b"\0" * 512)
            filler.flush()
    command = t.run(t.suite.sweep_argv(out))
    logs = "".join(
        p.read_text(errors="replace") for p in (OutputLayout(out).logs).glob("sweep_*.log")
    )
    said = "disk_full" in command.text + logs + json.dumps(master_rows(out).get(ON, {}))
    t.note(f"exit {command.code}; disk_full said: {said}; {_clip(command.first_error(), 90)}")
    if command.code == 2:
        t.expect(len(command.error_lines()) == 1, f"{len(command.error_lines())} error lines")
    else:
        t.expect(command.code == 1, f"exit {command.code} (expected 1 or 2)")
        t.expect(said, "no run failed with cause disk_full")


@fault("archive_log_path_outside", "submission.zip holds no file from outside the output folder")
def _archive_log_path_outside(t: Trial) -> None:
    t.from_baseline()
    up = "../" * max(4, len(t.out.parts))
    edit_record(t, OFF, log_path=up + "etc/passwd")
    edit_record(t, OFF_NA, log_path="/etc/shadow")
    secret = t.dir / "secret.log"
    secret.write_text(f"HF_TOKEN={CANARY_FILE}\n")
    clone_run(t, OFF, "tiny-model_Outside", log_path=str(secret))
    for path in (Path("/etc/passwd"), Path("/etc/shadow")):
        with contextlib.suppress(OSError, IndexError):
            t.markers.append(path.read_text().splitlines()[0])
    report_ok(t)
    _archive_members(t)


@fault("archive_symlink", "a symlink in a run folder is not followed into the archive")
def _archive_symlink(t: Trial) -> None:
    t.from_baseline()
    secret = t.dir / "secret.csv"
    secret.write_text(f"HF_TOKEN={CANARY_FILE}\n")
    folder = t.run_dir(OFF)
    (folder / contract.PER_PROMPT_FILE).unlink()
    (folder / contract.PER_PROMPT_FILE).symlink_to("/etc/passwd")
    (folder / "extra.txt").symlink_to("/etc/passwd")
    (t.run_dir(OFF_NA) / contract.POWER_TRACE_FILE).unlink()
    (t.run_dir(OFF_NA) / contract.POWER_TRACE_FILE).symlink_to(secret)
    with contextlib.suppress(OSError, IndexError):
        t.markers.append(Path("/etc/passwd").read_text().splitlines()[0])
    report_ok(t)
    _archive_members(t)


def _archive_members(t: Trial) -> None:
    archive = report_layout(t.out).archive
    if not zipfile.is_zipfile(archive):
        t.note("no archive")
        return
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
    outside = [n for n in names if n.startswith("/") or ".." in Path(n).parts]
    t.note(f"archive: {len(names)} members")
    t.expect(not outside, f"archive members outside: {outside[:3]}")


@fault("csv_unterminated_quote", "exit 2 naming file:line")
def _csv_unterminated_quote(t: Trial) -> None:
    models = write_models(
        t,
        f",{t.suite.model},1,A,text_gen,Off,N/A\n"
        + f',{t.suite.model},1,A,text_gen,On,"reasoning: True\n',
    )
    command = t.run(t.suite.sweep_argv(t.out, csv_path=models))
    refused(t, command)
    names_line(t, command, models, None)
    t.expect(not t.out.exists(), "the output folder was made")


@fault("csv_bad_class", "exit 2 naming file:line")
def _csv_bad_class(t: Trial) -> None:
    models = write_models(
        t, f",{t.suite.model},1,A,text_gen,Off,N/A\n" + f",{t.suite.model},1,D,text_gen,On,N/A\n"
    )
    command = t.run(t.suite.sweep_argv(t.out, csv_path=models))
    refused(t, command)
    names_line(t, command, models, 3)
    t.expect(not t.out.exists(), "the output folder was made")


@fault("html_injection_model_name", "escaped in the leaderboard page")
def _html_injection(t: Trial) -> None:
    t.from_baseline()
    clone_run(t, OFF, "tiny-model_Script", model_id=SCRIPT, model_name=SCRIPT)
    report_ok(t)
    page = report_layout(t.out).leaderboard_html.read_text(errors="replace")
    raw = SCRIPT in page
    escaped = "&lt;script&gt;alert(1)" in page or "\\u003cscript\\u003ealert(1)" in page
    t.note(f"raw in page: {raw}; escaped: {escaped}")
    t.expect(not raw, "the model name is in the page unescaped")
    t.expect(escaped, "the model name is not in the page at all")


@fault(
    "token_canary_env_and_dotenv",
    "the tokens of HF_TOKEN and .env in no file, archive or output",
    targets=(OFF_NA,),
)
def _token_canary(t: Trial) -> None:
    t.from_baseline()
    (t.dir / ".env").write_text(f"HF_TOKEN={CANARY_DOTENV}\n")
    forced = t.run(t.suite.sweep_argv(t.out, "--force", "--reasoning-state", "N/A"))
    t.note(f"forced run exit {forced.code}")
    t.expect(forced.code == 0, f"forced run exit {forced.code}")
    report = t.run(t.suite.report_argv(t.out), env=t.suite.env(HF_TOKEN=None))
    t.note(f"report (token from .env) exit {report.code}")
    t.expect(report.code == 0, f"report exit {report.code}")


@fault("csv_formula_model_name", "the master CSV cell starts with an apostrophe")
def _csv_formula(t: Trial) -> None:
    t.from_baseline()
    clone_run(t, OFF, "tiny-model_Formula", model_id="=1+1", model_name="=1+1")
    command = t.run(t.suite.sweep_argv(t.out, "--reasoning-state", "Off"))
    t.expect(command.code == 0, f"sweep exit {command.code}")
    cell = master_rows(t.out).get("tiny-model_Formula", {}).get("model_name")
    t.note(f"master cell {cell!r}")
    t.expect(cell == "'=1+1", f'master cell {cell!r} (expected "\'=1+1")')
    board = report_layout(t.out).leaderboard_csv
    if board.is_file():
        with board.open(newline="") as f:
            cells = [
                r.get("model_name") for r in csv.DictReader(f) if "1+1" in r.get("model_name", "")
            ]
        t.note(f"leaderboard cell {cells[:1]}")
        t.expect(cells == ["'=1+1"], f"leaderboard cell {cells[:1]}")


@fault("timeout_run", "that run fails with cause timeout; no orphan")
def _timeout_run(t: Trial) -> None:
    t.from_baseline()
    command = t.run(t.suite.sweep_argv(t.out, "--no-report", "--timeout", "3"))
    row = master_rows(t.out).get(ON, {})
    got = f"{row.get('status')}/{row.get('cause')}"
    t.note(f"exit {command.code} in {command.seconds:.0f} s; {ON} {got}")
    t.expect(command.code == 1, f"exit {command.code} (expected 1)")
    expect_row(t, ON, "failed", "timeout")


@fault("sigint_during_forced_rerun", "exit 130; the earlier success of that run is kept")
def _sigint_forced(t: Trial) -> None:
    t.from_baseline()
    sweep = t.start(t.suite.sweep_argv(t.out, "--no-report", "--force", "--reasoning-state", "N/A"))
    t.wait_for_bench(sweep)
    time.sleep(2)
    killpg(signal.SIGINT)(sweep)
    command = t.finish(sweep, timeout=120)
    t.note(f"exit {command.code}; {OFF_NA} record {status_of(t, OFF_NA)}")
    t.expect(command.code == 130, f"exit {command.code} (expected 130)")
    t.settle_orphans(15)


# ----------------------------------------------------------------------------- output

COLUMNS = (
    "fault",
    "expected",
    "observed",
    "results lost",
    "leaks",
    "tracebacks",
    "orphans",
    "pass",
)
WIDTHS = (30, 60, 100, 12, 5, 10, 7, 4)


def _cells(obs: Observation) -> list[str]:
    return [
        obs.fault,
        obs.expected,
        obs.observed,
        str(obs.lost),
        str(obs.leaks),
        str(obs.tracebacks),
        str(obs.orphans),
        obs.verdict,
    ]


def total_line(results: list[Observation]) -> str:
    passed = sum(o.passed for o in results)
    skipped = sum(bool(o.skipped) for o in results)
    line = (
        f"{len(results)} faults: {passed} pass; {sum(o.lost for o in results)} completed results "
        f"lost, {sum(o.leaks for o in results)} leaks, {sum(o.tracebacks for o in results)} "
        f"tracebacks shown to the user, {sum(o.orphans for o in results)} orphan processes"
    )
    return line + (f"; {skipped} skipped" if skipped else "")


def table(results: list[Observation], *, markdown: bool = False) -> str:
    """The table of observations, as fixed-width text or Markdown."""
    if markdown:

        def row(cells: list[str]) -> str:
            return "| " + " | ".join(_clip(c, 300).replace("|", "\\|") for c in cells) + " |"

        lines = [row(list(COLUMNS)), "| " + " | ".join("---" for _ in COLUMNS) + " |"]
        lines += [row(_cells(o)) for o in results]
        return "\n".join(lines)
    rows = [list(COLUMNS)] + [
        [_clip(c, w) for c, w in zip(_cells(o), WIDTHS, strict=True)] for o in results
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", metavar="SUBSTRING", help="run only the faults whose name holds it"
    )
    parser.add_argument("--list", action="store_true", help="list the faults and exit")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--details", action="store_true", help="print the commands of failed cases")
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout to test (this one)")
    parser.add_argument("--workdir", type=Path, default=None, help="work folder (kept)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or args.only in c.name]
    if args.list:
        for case in cases:
            print(f"{case.name:32} {case.expected}")
        return 0
    if not cases:
        parser.error(f"no fault name holds {args.only!r}")
    suite = Suite(args.root, args.workdir, keep=args.keep)
    results = []
    started = time.monotonic()
    try:
        for i, case in enumerate(cases, 1):
            print(f"[{i}/{len(cases)}] {case.name} ...", file=sys.stderr, flush=True)
            obs = case(suite)
            results.append(obs)
            print(f"    {obs.verdict} ({obs.seconds:.0f} s)", file=sys.stderr, flush=True)
    finally:
        suite.close()
    print(table(results, markdown=args.markdown))
    print()
    print(total_line(results))
    print(f"({time.monotonic() - started:.0f} s; root {suite.root})")
    if args.details:
        for obs in results:
            if not obs.passed and not obs.skipped:
                print(f"\n== {obs.report()}")
    return 0 if all(o.passed or o.skipped for o in results) else 1


if __name__ == "__main__":
    sys.exit(main())
