"""The console tables at 80 columns: every name, reason and error readable, no number split."""

from __future__ import annotations

import argparse
import io
import re

import pytest
from conftest import ROOT
from fakes import fake_report, write_report
from rich.cells import cell_len
from rich.console import Console

from orchestrator.commands import list_models
from orchestrator.commands.tables import print_plan, print_summary
from orchestrator.execution.scheduler import SweepResult, triage
from orchestrator.execution.slots import cpu_slots
from orchestrator.models.csv_reader import read_models_csv
from orchestrator.planning.plan import PlanOptions, plan_runs
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import RunRecord, save_record

CONFIGS = read_models_csv(ROOT / "models.csv")
PLANS = plan_runs(CONFIGS, PlanOptions(image="img", software_id="s"), all_rows=CONFIGS)
SLOTS = cpu_slots(1)
ERROR = (
    "out_of_memory: CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.11 GiB total "
    "capacity; 60.12 GiB already allocated; 1.2 GiB free; 61.00 GiB reserved in total by PyTorch)"
)


def squeeze(text: str) -> str:
    return "".join(text.split())


def columns(text: str) -> dict[str, list[str]]:
    """The first table of ``text``: its header -> its cells, one per printed line."""
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("┃"))
    names = [c.strip() for c in header.strip("┃").split("┃")]
    body = [line.strip("│").split("│") for line in lines if line.startswith("│")]
    return {name: [row[i].strip() for row in body] for i, name in enumerate(names)}


def joined(cells: list[str]) -> str:
    """A column's lines as one string without whitespace: folded cells become whole again."""
    return squeeze("".join(cells))


def assert_fits(text: str, width: int) -> None:
    assert "…" not in text
    too_wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not too_wide, too_wide


def assert_whole(cells: list[str], pattern: str) -> None:
    """Every printed line of a column of numbers is one whole value (or empty)."""
    split = [c for c in cells if c and not re.fullmatch(pattern, c)]
    assert not split, split


def render_plan(tmp_path, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    args = argparse.Namespace(output_dir=tmp_path / "out", force=False, image="img")
    print_plan(console, PLANS, args, SLOTS, "local")
    return console.export_text()


def test_the_plan_at_80_columns_shows_every_run_name_and_skip_reason_whole(tmp_path):
    text = render_plan(tmp_path, 80)
    assert_fits(text, 80)
    table = columns(text)
    runs = joined(table["run"])
    gpt_oss = [p.name for p in PLANS if "gpt-oss" in p.name]
    assert len(gpt_oss) == 7
    for plan in PLANS:
        assert squeeze(plan.name) in runs, plan.name
    _, _, skipped = triage(PLANS, tmp_path / "out", force=False, slots=SLOTS)
    assert skipped
    for _, reason in skipped:
        assert squeeze(f"skip: {reason}") in joined(table["status"])
    assert_whole(table["class"], r"[ABC-]")
    assert_whole(table["GPUs"], r"\d+")
    assert_whole(table["generates"], r"\d+(-\d+)? tokens|\d+x\d+, \d+ steps|-")


def test_the_plan_shows_the_run_id_only_on_a_wide_console(tmp_path):
    assert "run id" not in columns(render_plan(tmp_path, 80))
    text = render_plan(tmp_path, 200)
    assert_fits(text, 200)
    table = columns(text)
    assert list(table) == ["run", "run id", "class", "GPUs", "generates", "status"]
    assert table["run id"] == [p.run_id for p in sorted(PLANS, key=lambda p: p.config.priority)]
    assert len(table["run"]) == len(PLANS)  # wide: a line per run, nothing folded


def test_the_model_list_at_80_columns_shows_every_model_id_whole(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert list_models.main([str(ROOT / "models.csv")]) == 0
    text = capsys.readouterr().out
    assert_fits(text, 80)
    table = columns(text)
    models = joined(table["model"])
    for config in CONFIGS:
        assert squeeze(config.model_id) in models, config.model_id
    states = joined(table["state"])
    for config in CONFIGS:
        assert squeeze(config.reasoning_state or "-") in states
    assert_whole(table["class"], r"[ABC-]")
    assert_whole(table["new tokens"], r"exactly \d+|\d+-\d+|-")
    assert f"{len(CONFIGS)} of {len(CONFIGS)} rows" in text

    monkeypatch.setenv("COLUMNS", "200")  # a wide console keeps the line and the priority
    assert list_models.main([str(ROOT / "models.csv")]) == 0
    wide = columns(capsys.readouterr().out)
    assert list(wide)[:3] == ["line", "model", "prio"]
    assert wide["line"] == [str(c.line) for c in CONFIGS]


def test_the_summary_at_80_columns_shows_every_run_name_and_error_whole(tmp_path):
    out = tmp_path / "out"
    records = []
    for i, plan in enumerate(PLANS[:12]):
        status = ("ok", "failed", "interrupted", "skipped")[i % 4]
        record = RunRecord(
            plan.run_id, plan.name, plan.config.model_id, "B", "text_gen", "On", status,
            error_message="" if status == "ok" else ERROR, duration_s=12345.6,
            finished_at="2026-11-29T10:00:00+00:00",
        )  # fmt: skip
        folder = OutputLayout(out).run_dir(plan.name)
        save_record(folder, record)
        if status == "ok":
            source = "estimate" if i == 4 else "nvml"
            write_report(folder, fake_report(energy_wh=123.4567, source=source))
        records.append(record)
    console = Console(width=80, record=True, file=io.StringIO())
    print_summary(console, SweepResult(records=records, resumed=[PLANS[4].name]), out)
    text = console.export_text()
    assert_fits(text, 80)
    table = columns(text)
    runs, errors = joined(table["run"]), joined(table["error"])
    for record in records:
        assert squeeze(record.name) in runs, record.name
    assert joined(table["status"]).count("interrupted") == 3
    assert errors.count(squeeze(ERROR[:160])) == 9
    assert_whole(table["seconds"], r"12345\.6")
    assert_whole(table["energy Wh"], r"123\.4567|\(estimate\)|-")  # one of them estimated
    assert_whole(table["tokens/J"], r"\d+\.\d{3}|-")


@pytest.mark.parametrize("sources", [("nvml", "nvml"), ("nvml", "estimate")])
def test_the_summary_calls_energy_gpu_energy_only_when_gpus_measured_it(tmp_path, sources):
    out, records = tmp_path / "out", []
    for plan, source in zip(PLANS, sources, strict=False):
        record = RunRecord(
            plan.run_id, plan.name, plan.config.model_id, "A", "text_gen", "Off", "ok"
        )
        save_record(OutputLayout(out).run_dir(plan.name), record)
        write_report(
            OutputLayout(out).run_dir(plan.name), fake_report(energy_wh=1.5, source=source)
        )
        records.append(record)
    console = Console(width=120, record=True, file=io.StringIO())
    print_summary(console, SweepResult(records=records, resumed=[]), out)
    text = console.export_text()
    (energy,) = [name for name in columns(text) if "Wh" in name]
    if "estimate" in sources:
        assert "GPU" not in energy and "total GPU energy" not in text
        assert "total energy 3.0000 Wh (estimates included)" in text
    else:
        assert energy == "GPU Wh" and "total GPU energy 3.0000 Wh" in text
