"""The host and the benchmark agree through one module, energy_bench.contract, and only it."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import CONTAINER, ROOT

from energy_bench import config as bench_config
from energy_bench import contract, errors
from energy_bench.results import files as bench_files
from energy_bench.workload import rendering
from orchestrator.execution import spec
from orchestrator.models import config as host_config
from orchestrator.models import reasoning
from orchestrator.reports import archive, ratings
from orchestrator.store import records

HOST = ROOT / "orchestrator"
BENCH = CONTAINER / "energy_bench"
README = (ROOT / "README.md").read_text()


def test_both_sides_hold_the_same_objects():
    assert host_config.Control is contract.Control is bench_config.Control
    assert bench_config.CONTROLS is contract.CONTROLS
    # What each control writes comes from the contract on both sides.
    assert reasoning.control_writes is contract.control_writes is rendering.control_writes
    assert records.contract is contract and bench_files.contract is contract
    assert set(archive.ARCHIVED) - {"run_record.json"} <= set(contract.RESULT_FILES)
    assert set(ratings.SUSPECT_FLAGS) == set(contract.FLAG_KEYS)  # every flag makes a run suspect


def test_every_exit_status_of_the_benchmark_has_its_cause_on_the_host():
    assert set(spec.EXIT_CAUSES) == set(contract.ExitCode) - {contract.ExitCode.OK}
    assert {c.value for c in spec.EXIT_CAUSES.values()} >= {"gated_model", "model_not_found"}
    # Each benchmark error ends with its own status, gated and not-found apart.
    codes = {
        errors.BenchConfigError: contract.ExitCode.CONFIG_ERROR,
        errors.ModelLoadError: contract.ExitCode.MODEL_LOAD_ERROR,
        errors.GatedModel: contract.ExitCode.GATED_MODEL,
        errors.ModelNotFound: contract.ExitCode.MODEL_NOT_FOUND,
        errors.OutOfMemory: contract.ExitCode.OUT_OF_MEMORY,
        errors.BenchmarkAborted: contract.ExitCode.ABORTED,
        errors.EnergyUnavailable: contract.ExitCode.NO_ENERGY_SOURCE,
    }
    for error, code in codes.items():
        assert error.exit_code is code
        assert spec.classify_exit(int(code), "").cause is spec.EXIT_CAUSES[code]


def test_error_line_round_trips():
    line = contract.error_line("GatedModel", "gated model a/b (HTTP 401/403)\nmore")
    assert contract.parse_error_line(f"noise\n{line}\n") == (
        "GatedModel",
        "gated model a/b (HTTP 401/403)",
    )
    assert contract.parse_error_line("no error here") is None


@pytest.mark.parametrize(
    ("overrides", "code", "cause"),
    [
        (["backend.model=org/x", "scenario.nmu_samples=3"], 2, "config_error"),
        (["backend.model=/no/such/model/folder"], 8, "model_not_found"),
    ],
)
def test_a_real_failed_run_is_classified_by_its_exit_status(tmp_path, overrides, code, cause):
    done = subprocess.run(
        [sys.executable, "-m", "energy_bench", "--results-dir", str(tmp_path), *overrides],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == code, done.stderr[-2000:]
    outcome = spec.classify_exit(done.returncode, done.stderr)
    assert outcome.cause.value == cause
    assert outcome.message == ": ".join(contract.parse_error_line(done.stderr))


def _imports(path: Path) -> set[str]:
    """Modules a file imports, at the top or inside functions (a lazy import is a cycle too)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_host_imports_only_the_contract_of_the_benchmark():
    for path in HOST.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "energy_bench":
                names = [f"energy_bench.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            bench = [n for n in names if n.split(".")[0] == "energy_bench"]
            assert all(n == "energy_bench.contract" for n in bench), (path, bench)


def test_the_benchmark_never_imports_the_host():
    for path in BENCH.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names]
                assert not any(n.split(".")[0] == "orchestrator" for n in names), path


def test_loading_every_host_module_loads_no_other_part_of_the_benchmark():
    modules = sorted(_module(p, ROOT) for p in HOST.rglob("*.py"))
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.startswith('energy_bench')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['energy_bench', 'energy_bench.contract']"


@pytest.mark.parametrize(("package", "root"), [(HOST, ROOT), (BENCH, CONTAINER)])
def test_no_import_cycles(package, root):
    modules = {_module(p, root): p for p in package.rglob("*.py")}
    graph = {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


PATH_LITERALS = (
    "individual_runs",
    "batch_results",
    "master_results.csv",
    ".master_rows.json",
    ".run_durations.json",
    "run_record.json",
    ".sweep.lock",
    "logs",
    "leaderboard.csv",
    "leaderboard.html",
    "submission.zip",
    "manifest.json",
    *contract.RESULT_FILES,
)


def test_paths_are_written_only_by_the_store_and_the_contract():
    for path in [*HOST.rglob("*.py"), *BENCH.rglob("*.py"), *(ROOT / "tools").glob("*.py")]:
        if path.parent.name == "store" or path.name == "contract.py":
            continue
        text = path.read_text()
        for literal in PATH_LITERALS:
            assert f'"{literal}"' not in text and f"/{literal}" not in text, (path, literal)


def test_the_packaging_lists_every_package(tmp_path):
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    tree = {_module(p, ROOT) for p in HOST.rglob("__init__.py")}
    tree |= {_module(p, CONTAINER) for p in BENCH.rglob("__init__.py")}
    assert listed == tree | {"energy_bench.configs"}
    bench = set(
        tomllib.loads((CONTAINER / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    assert bench == {m for m in listed if m.startswith("energy_bench")}


def test_both_packages_import_from_any_folder(tmp_path):
    code = "import orchestrator, energy_bench, model_config_parser; print(orchestrator.__version__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == contract.VERSION


def test_the_default_prompt_count_and_the_bundled_set_are_the_benchmarks():
    from energy_bench.workload import prompts

    config = bench_config.load_config(contract.CONFIG_NAME, ["backend.model=x"])
    assert config.scenario.num_samples == contract.DEFAULT_NUM_SAMPLES
    assert prompts.BUNDLED == contract.BUNDLED_PROMPTS_FILE
    texts = [line for line in contract.BUNDLED_PROMPTS_FILE.read_text().splitlines() if line]
    assert contract.bundled_prompt_count() == len(texts) >= 200
    images = [line for line in contract.BUNDLED_IMAGE_PROMPTS_FILE.read_text().splitlines() if line]
    assert contract.bundled_prompt_count(image=True) == len(images) == 200


def test_the_readme_demo_output_is_left_out_of_git(tmp_path):
    import re

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    command = re.search(r"batch_runner\.py --csv examples/\S+ --output-dir (\S+)", README)
    assert command, "the README's demo command names its output folder"
    folder = command.group(1).rstrip("/")
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", f"{folder}/any_file"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, (folder, done.stderr)
