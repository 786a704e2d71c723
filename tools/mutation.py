"""Mutation testing of the code that makes or publishes the numbers.

    python tools/mutation.py [--jobs N] [--keep] [--only GLOB ...] [--mutants NAME ...] [--markdown]

mutmut needs the packages it mutates under one source folder, so this stages a copy of the
tree in ``build/mutation`` with both packages under ``src/`` (``src/orchestrator`` and
``src/energy_bench``, the benchmark laid out as installed, its configs inside it), writes the
mutmut settings into the copy's ``pyproject.toml`` and runs ``mutmut run`` there on the
modules of ``MODULES`` (or those matching ``--only``). Tests run as the default suite runs them
without Docker, GPU and the two slow end-to-end tests; a mutant counts as killed when a test
that executes the mutated function fails. Code reached only through a subprocess (the
benchmark started by the local runner) is not counted as tested: those mutants are "no tests".

mutmut forks each mutant's tests from a warm process, so the thread pools of torch (OpenMP) and
tokenizers are kept to one thread: a pool started before the fork deadlocks the child, which
then ends as a timeout and would count as a kill. ``--keep`` reuses the staged copy and its
results, copies the current code and tests into it and re-tests the mutants that survived or had
no tests (after new tests were written), and every mutant of a function whose code changed since
staging (mutmut keeps the results of the others); the names of those may move.
``--mutants`` tests only the mutants named (``x__execute__mutmut_*``: every mutant of a
function), even those already decided; the others stay unchecked.

It prints one line per module: mutants, killed, survived, no tests, timeouts, those listed as
equivalent in ``docs/MUTATION.md`` and the score, killed / (mutants - equivalent), with the
survivors' names below, then any name of that list that a test kills (counted killed) or
that is no mutant of the run (``--markdown`` prints the table for docs/BENCHMARKS.md). The score
counts the mutants checked so far. Exit status 1 when the score of all modules together is
under ``GOAL`` or mutants are left unchecked.
"""

from __future__ import annotations

import argparse
import filecmp
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "build" / "mutation"
EQUIVALENTS = ROOT / "docs" / "MUTATION.md"
GOAL = 0.90
CACHES = ("__pycache__", "*.pyc", ".pytest_cache")

# The modules that decide the published numbers, as (source path, path in the staged copy).
MODULES = {
    "container/energy_bench/energy/meter.py": "energy windows, idle baseline, suspect flags",
    "container/energy_bench/energy/sources.py": "counter and trace sources (RAPL wrap-around)",
    "container/energy_bench/energy/nvml.py": "NVML readings and unit conversions",
    "container/energy_bench/benchmark.py": "warmup, pass loop, repeats",
    "container/energy_bench/results/report.py": "the benchmark report",
    "container/energy_bench/backends/pytorch.py": "the generate call and token counts",
    "container/energy_bench/config.py": "token budgets in the benchmark",
    "orchestrator/models/reasoning.py": "reasoning resolution",
    "orchestrator/models/csv_reader.py": "token budgets from the CSV",
    "orchestrator/store/records.py": "run records, completeness (resume)",
    "orchestrator/store/master.py": "the master CSV",
    "orchestrator/reports/ratings.py": "star ratings",
    "orchestrator/secrets.py": "token redaction",
    "orchestrator/execution/runners/base.py": "log pump redaction",
    "orchestrator/execution/spec.py": "exit-code classification",
    "orchestrator/execution/execute.py": "retries, outcome records",
    "orchestrator/execution/scheduler.py": "resume (which runs are done)",
}
# What the tests of a mutant run: the default suite without the engine, the GPU or the two
# end-to-end tests that drive everything through subprocesses (they kill no mutant in-process).
PYTEST_ARGS = ["-m", "not docker and not gpu and not slow", "-p", "no:cacheprovider", "-q"]
STATUS = ("killed", "survived", "no tests", "timeout", "suspicious", "skipped", "not checked")
# A mutant's tests may take this many times their clean time (mutmut's default, 15, lets a
# mutant that loops cost minutes); the CPU limit is twice that.
TIMEOUT_MULTIPLIER = 4
# One thread per pool: see the module's docstring.
SINGLE_THREADED = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
}  # fmt: skip
# mutmut's exit codes (its meta files) of a mutant that survived and of one no test reached.
SURVIVED, NO_TESTS = 0, 33


def staged(path: str) -> str:
    """The path of a module in the staged copy (both packages under ``src/``)."""
    return "src/" + path.removeprefix("container/")


def tracked_top_level() -> list[str]:
    """The tree's tracked top-level files and folders: the tests read models, configs, docs."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted({name.split("/")[0] for name in files})


def copy_tree(dest: Path) -> None:
    """Copy the tree's tracked top-level files and folders into ``dest``, without caches."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns(*CACHES)
    for name in tracked_top_level():
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, dest / name)


def copy_packages() -> None:
    """Both packages under the staged copy's ``src/``, the benchmark's configs inside it.

    Each file keeps its time (``copytree`` copies it), which is what mutmut compares.
    """
    ignore = shutil.ignore_patterns(*CACHES)
    orchestrator, bench = STAGE / "src" / "orchestrator", STAGE / "src" / "energy_bench"
    for dest in (orchestrator, bench):
        shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(ROOT / "orchestrator", orchestrator, ignore=ignore)
    shutil.copytree(ROOT / "container" / "energy_bench", bench, ignore=ignore)
    shutil.copytree(ROOT / "container" / "configs", bench / "configs", ignore=ignore)


def stage(modules: list[str]) -> None:
    """Make a fresh ``build/mutation`` with both packages under ``src/`` and mutmut's settings."""
    shutil.rmtree(STAGE, ignore_errors=True)
    copy_tree(STAGE)
    copy_packages()
    settings = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["src"]',
            f"only_mutate = {[staged(m) for m in modules]!r}",
            f"also_copy = {tracked_top_level()!r}",
            f"pytest_add_cli_args = {PYTEST_ARGS!r}",
            f"timeout_multiplier = {TIMEOUT_MULTIPLIER}",
            'pytest_add_cli_args_test_selection = ["tests"]',
            "",
        ]
    ).replace("'", '"')
    pyproject = (ROOT / "pyproject.toml").read_text()
    (STAGE / "pyproject.toml").write_text(pyproject + settings)


def restage() -> tuple[list[str], int]:
    """Copy the current tree into the staged copy, results kept; survivors become unchecked.

    Returns the mutated modules that changed since staging and how many mutants were marked.
    mutmut then regenerates only the modules that changed, and of those only the functions
    whose code changed lose their results (its own bookkeeping); it maps every test to the
    functions it runs again.
    """
    changed = [
        m for m in MODULES
        if not (STAGE / staged(m)).is_file()
        or not filecmp.cmp(ROOT / m, STAGE / staged(m), shallow=False)
    ]  # fmt: skip
    settings = (STAGE / "pyproject.toml").read_text().partition("\n[tool.mutmut]")
    for name in tracked_top_level():  # the tests, and what they read: models, configs, docs
        old = STAGE / name
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
    copy_tree(STAGE)
    (STAGE / "pyproject.toml").write_text(
        (ROOT / "pyproject.toml").read_text() + "".join(settings[1:])
    )
    copy_packages()
    # mutmut maps each function to the tests that run it, but maps again only the tests whose
    # names are new: a test extended to reach another function would not be run for its mutants.
    (STAGE / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    again = 0
    for meta in (STAGE / "mutants" / "src").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if code in (SURVIVED, NO_TESTS):
                codes[name] = None
                again += 1
        meta.write_text(json.dumps(data))
    return changed, again


def equivalents() -> dict[str, str]:
    """Mutants documented as equivalent: ``- `name`: reason`` lines in docs/MUTATION.md."""
    if not EQUIVALENTS.is_file():
        return {}
    found = re.findall(r"^- `([^`]+)`: (.+)$", EQUIVALENTS.read_text(), flags=re.MULTILINE)
    return dict(found)


def results() -> dict[str, str]:
    """Each mutant's status, from ``mutmut results --all true``."""
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=STAGE, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.findall(r"^\s+(\S+): (.+)$", done.stdout, flags=re.MULTILINE)
    return {name: status.strip() for name, status in found}


def module_of(mutant: str, modules: list[str]) -> str:
    """The source path whose staged module name starts ``mutant``."""
    for path in modules:
        dotted = staged(path).removeprefix("src/").removesuffix(".py").replace("/", ".")
        if mutant.startswith(dotted + ".x"):
            return path
    return "?"


def table(statuses: dict[str, str], modules: list[str], markdown: bool) -> tuple[str, float]:
    """The per-module lines and the overall score."""
    equivalent = equivalents()
    counts: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    killed_anyway = []  # listed equivalent, yet killed: a wrong line, or a test failed under load
    for mutant, status in statuses.items():
        path = module_of(mutant, modules)
        if mutant in equivalent and status == "killed":  # a timeout may be the machine's
            killed_anyway.append(mutant)
        elif mutant in equivalent:
            status = "equivalent"
        counts[path][status] += 1
        counts[path]["mutants"] += 1
        if status not in ("killed", "timeout", "equivalent", "not checked"):
            survivors[path].append(f"{mutant} ({status})")
    head = (
        "module", "mutants", "killed", "survived", "no tests", "timeout", "equiv", "unchecked",
        "score",
    )  # fmt: skip
    rows, total = [], Counter()
    for path in [*modules, "?"]:
        c = counts.get(path)
        if not c:
            continue
        total.update(c)
        rows.append((path, *_figures(c)))
    rows.append(("all", *_figures(total)))
    score = _score(total) or 0.0
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    else:
        width = max(len(r[0]) for r in rows)
        lines = [f"{head[0]:<{width}} " + " ".join(f"{h:>8}" for h in head[1:])]
        lines += [f"{r[0]:<{width}} " + " ".join(f"{v:>8}" for v in r[1:]) for r in rows]
        for path in modules:
            if survivors.get(path):
                lines += ["", f"{path}:"] + [f"  {s}" for s in sorted(survivors[path])]
        unknown = [  # names that moved or went away
            name for name in set(equivalent) - set(statuses) if module_of(name, modules) != "?"
        ]
        for title, names in (
            (f"listed in {EQUIVALENTS.name} as equivalent but killed (counted killed)",
             killed_anyway),
            (f"listed in {EQUIVALENTS.name} but not a mutant of this run", unknown),
        ):  # fmt: skip
            if names:
                lines += ["", f"{title}:"] + [f"  {name}" for name in sorted(names)]
    return "\n".join(lines), score


def _score(c: Counter) -> float | None:
    """Killed (timeouts too) over the mutants checked so far that are not equivalent."""
    tested = c["mutants"] - c["equivalent"] - c["skipped"] - c["not checked"]
    return (c["killed"] + c["timeout"]) / tested if tested else None


def _percent(score: float | None) -> str:
    return "-" if score is None else f"{100 * score:.1f} %"


def _figures(c: Counter) -> tuple:
    return (
        c["mutants"], c["killed"], c["survived"], c["no tests"], c["timeout"],
        c["equivalent"], c["not checked"], _percent(_score(c)),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Stage, run mutmut, print the table; exit 1 under the goal."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=None, help="mutants tested at once")
    parser.add_argument("--only", nargs="+", default=[], metavar="GLOB", help="modules to mutate")
    parser.add_argument(
        "--mutants", nargs="+", default=[], metavar="NAME",
        help="test only these mutants (mutmut's names, * for any text), even those decided",
    )  # fmt: skip
    parser.add_argument(
        "--keep", action="store_true",
        help="reuse build/mutation and its results; re-test survivors with the current tests",
    )  # fmt: skip
    parser.add_argument("--report", action="store_true", help="print the last run's table only")
    parser.add_argument("--markdown", action="store_true", help="the table as Markdown")
    args = parser.parse_args(argv)
    modules = [m for m in MODULES if not args.only or any(fnmatch.fnmatch(m, g) for g in args.only)]
    if not modules:
        parser.error(f"no module matches {args.only}; they are: {', '.join(MODULES)}")
    started = time.monotonic()
    if not args.report:
        if args.keep and STAGE.is_dir():
            changed, again = restage()
            print(f"{again} mutants to test again with the current tests")
            if changed:
                print(f"changed since staging: {', '.join(changed)}: their changed functions'"
                      " mutants are tested again, and may have new names")  # fmt: skip
        else:
            stage(modules)
        command = [sys.executable, "-m", "mutmut", "run"]
        if args.jobs:
            command += ["--max-children", str(args.jobs)]
        command += args.mutants
        done = subprocess.run(command, cwd=STAGE, env={**os.environ, **SINGLE_THREADED})
        if done.returncode:
            print(f"mutmut run ended with exit status {done.returncode}", file=sys.stderr)
            return done.returncode
    statuses = results()
    text, score = table(statuses, modules, args.markdown)
    print(text)
    took = time.monotonic() - started
    unchecked = sum(status == "not checked" for status in statuses.values())
    left = f"; {unchecked} mutants not yet checked (--keep goes on)" if unchecked else ""
    print(f"\nscore {100 * score:.1f} % (goal {100 * GOAL:.0f} %), {took:.0f} s{left}")
    return 0 if score >= GOAL and not unchecked else 1


if __name__ == "__main__":
    sys.exit(main())
