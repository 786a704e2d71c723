"""What this host cannot run: weights larger than its memory, more GPUs than it has; with numbers.

The dry run's table and the sweep read the same triage, so they skip the same runs for the same
reasons. Sizes come from the local Hugging Face cache (never a download), else from the model id.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
from pathlib import Path

import pytest
from conftest import ROOT, TINY_MODEL
from fakes import fake_report, write_report
from rich.console import Console

from orchestrator.commands.common import warn_without_token
from orchestrator.commands.progress import LogProgress
from orchestrator.commands.tables import print_plan
from orchestrator.execution import slots as slots_module
from orchestrator.execution.execute import ExecOptions
from orchestrator.execution.scheduler import run_sweep, triage
from orchestrator.execution.spec import Cause, RunOutcome
from orchestrator.models.csv_reader import read_models_csv, single_config
from orchestrator.planning.plan import PlanOptions, plan_runs
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import RunRecord, load_record, save_record

GIB = 2**30
CONFIGS = read_models_csv(ROOT / "models.csv") + read_models_csv(
    ROOT / "examples" / "demo_models.csv"
)
QWEN_235B = "needs ~438 GiB for 235B bf16 weights"  # 235e9 x 2 bytes
NEMOTRON_49B = "needs ~91 GiB for 49B bf16 weights"
NO_GPUS = "needs 2 GPUs; this host has none (--class-c-gpus 1 runs it on the CPU)"


@pytest.fixture(autouse=True)
def hub(monkeypatch, tmp_path):
    """An empty Hub cache of the test's own: the developer's cache never changes what it sees."""
    from huggingface_hub import constants

    path = tmp_path / "hub"
    path.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(path))
    return path


def cpu_host(monkeypatch, memory_gib: float):
    """The slots of a host without GPUs whose machine has ``memory_gib`` of memory."""
    monkeypatch.setattr(
        slots_module, "host_memory_bytes", lambda: int(memory_gib * GIB), raising=False
    )
    return slots_module.cpu_slots(1)


def plans_of(configs, *extra: str, **options):
    opts = PlanOptions(image="i", software_id="s", extra_overrides=extra, **options)
    return plan_runs(configs, opts, all_rows=configs)


def one(model: str, *extra: str, model_class: str = "A", **options):
    return plans_of([single_config(model, model_class=model_class)], *extra, **options)


def statuses(plans, slots, out: Path, *, force: bool = False) -> dict[str, str]:
    """Run name -> "to run", "complete" or the skip reason, as triage decides."""
    todo, done, skipped = triage(plans, out, force=force, slots=slots)
    return (
        {p.name: "to run" for p in todo}
        | {p.name: "complete" for p in done}
        | {p.name: reason for p, reason in skipped}
    )


def cache_model(hub: Path, repo: str, config: dict, *, total_size: int | None = None,
                single_file_bytes: int | None = None) -> None:  # fmt: skip
    """Lay ``repo`` out in a Hub cache as a download leaves it: refs/main -> a snapshot."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    (snapshot / "config.json").write_text(json.dumps(config))
    if total_size is not None:
        index = {"metadata": {"total_size": total_size}, "weight_map": {}}
        (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
    if single_file_bytes is not None:
        sparse(snapshot / "model.safetensors", single_file_bytes)


def sparse(path: Path, size: int) -> None:
    """A file of ``size`` bytes that takes no disk space."""
    with path.open("wb") as f:
        f.truncate(size)


def plan_rows(text: str) -> dict[str, str]:
    """Run name -> status of a plan table printed wide enough that no cell folds."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            rows[cells[0]] = cells[-1]
    return rows


# --- the dry run on a host without GPUs -------------------------------------------------------


def test_the_dry_run_on_a_cpu_host_skips_what_its_memory_cannot_hold(monkeypatch, tmp_path):
    """models.csv and the demo on a 64 GiB machine: the 235B models are skipped with numbers."""
    slots = cpu_host(monkeypatch, 64)
    plans = plans_of(CONFIGS)
    console = Console(width=250, record=True, file=io.StringIO())
    args = argparse.Namespace(output_dir=tmp_path / "out", force=False, image="i")
    todo = print_plan(console, plans, args, slots, "local")
    text = console.export_text()
    rows = plan_rows(text)
    memory = "this machine has 64 GiB"
    assert rows["Qwen_Qwen3-235B-A22B_On"] == f"skip: {QWEN_235B}; {memory}"
    assert rows["Qwen_Qwen3-235B-A22B_Off"] == f"skip: {QWEN_235B}; {memory}"
    assert rows["nvidia_Llama-3_3-Nemotron-Super-49B-v1_5_On"] == f"skip: {NEMOTRON_49B}; {memory}"
    for name in ("tiny-model_Off", "tiny-model_On", "tiny-model_Off_N_A"):
        assert rows[name] == "to run"
    assert rows["openai_gpt-oss-20b_Off_N_A"] == "to run"  # ~37 GiB
    assert rows["mistralai_Mistral-Nemo-Instruct-2407_Off_N_A"] == "to run"  # no size known
    # A class C run wants several GPUs; a host without any cannot give them, whatever its size.
    assert rows["deepseek-ai_DeepSeek-R1_On"] == f"skip: {NO_GPUS}"
    assert rows["deepseek-ai_DeepSeek-R1-Distill-Qwen-32B_Off"] == f"skip: {NO_GPUS}"  # 60 GiB
    assert rows["Qwen_Qwen-Image_NA"] == "to run"  # no size known
    assert {p.name for p in todo} == {name for name, s in rows.items() if s == "to run"}
    skipped = sum(s.startswith("skip:") for s in rows.values())
    assert f"plan: {len(todo)} to run, 0 complete, {skipped} skipped" in text
    assert not (tmp_path / "out").exists()


def test_the_sweep_skips_the_same_runs_for_the_same_reasons_as_its_dry_run(monkeypatch, tmp_path):
    slots = cpu_host(monkeypatch, 64)
    wanted = ("Qwen/Qwen3-235B-A22B", "deepseek-ai/DeepSeek-R1", "Qwen/Qwen3-0.6B", "tiny-model")
    configs = [c for c in CONFIGS if c.model_id.endswith(wanted)]
    plans = plans_of(configs)
    out = tmp_path / "out"
    console = Console(width=250, record=True, file=io.StringIO())
    print_plan(
        console, plans, argparse.Namespace(output_dir=out, force=False, image="i"), slots, "l"
    )
    planned = plan_rows(console.export_text())

    runner = Launches()
    result = run_sweep(
        plans, runner=runner, options=ExecOptions(out_dir=out, image="i"), slots=slots,
        progress=LogProgress(), force=True,  # --force reruns complete runs, never impossible ones
    )  # fmt: skip
    got = {
        r.name: "to run" if r.status == "ok" else f"skip: {r.error_message}" for r in result.records
    }
    assert got == planned
    names = {p.run_id: p.name for p in plans}
    assert sorted(names[i] for i in runner.launched) == sorted(
        n for n, s in planned.items() if s == "to run"
    )
    assert {r.status for r in result.records} == {"ok", "skipped"} and not result.failed
    skipped = load_record(OutputLayout(out).run_dir("Qwen_Qwen3-235B-A22B_Off"))
    assert skipped.status == "skipped" and skipped.error_message.startswith(QWEN_235B)


class Launches:
    """A runner that succeeds at once and remembers what it launched."""

    name = "fake"

    def __init__(self) -> None:
        self.launched: list[str] = []

    def run(self, spec, *, token=None) -> RunOutcome:
        self.launched.append(spec.run_id)
        write_report(spec.results_dir, fake_report())
        return RunOutcome(Cause.OK, 0, 0.01)

    def software_id(self, image):
        return "fake"

    def cancel(self):
        pass

    def remove_leftovers(self, out_dir):
        return 0


def test_a_complete_run_stays_complete_and_force_never_overwrites_it_with_a_skip(
    monkeypatch, tmp_path
):
    """A result of this very run id proves it ran: resume keeps it; --force cannot run it here."""
    slots = cpu_host(monkeypatch, 16)
    (plan,) = one("org/big-70B")
    out = tmp_path / "out"
    folder = OutputLayout(out).run_dir(plan.name)
    record = RunRecord(plan.run_id, plan.name, "org/big-70B", "A", "text_gen", "Off", "ok")
    save_record(folder, record)
    write_report(folder, fake_report())
    assert statuses([plan], slots, out) == {plan.name: "complete"}
    reason = "needs ~130 GiB for 70B bf16 weights; this machine has 16 GiB"
    assert statuses([plan], slots, out, force=True) == {plan.name: reason}
    result = run_sweep(
        [plan], runner=Launches(), options=ExecOptions(out_dir=out, image="i"), slots=slots,
        progress=LogProgress(), force=True,
    )  # fmt: skip
    assert result.records[0].status == "skipped"
    assert load_record(folder) == record  # the earlier success is kept


def test_class_c_on_a_cpu_host_is_skipped_unless_it_is_given_one_device(monkeypatch, tmp_path):
    slots = cpu_host(monkeypatch, 64)
    (small_c,) = one("org/small-1B", model_class="C")
    assert statuses([small_c], slots, tmp_path) == {small_c.name: NO_GPUS}
    (one_device,) = one("org/small-1B", model_class="C", class_c_gpus=1)
    assert statuses([one_device], slots, tmp_path) == {one_device.name: "to run"}


# --- on GPUs ---------------------------------------------------------------------------------


def test_a_run_is_skipped_when_its_weights_exceed_the_memory_of_the_gpus_it_gets(tmp_path):
    h100 = slots_module.gpu_slots(["GPU-a"], ["NVIDIA H100"], memory_bytes=[80 * GIB])
    plans = plans_of([c for c in CONFIGS if "Nemotron" in c.model_id or "30B-A3B" in c.model_id])
    got = statuses(plans, h100, tmp_path)
    assert got["nvidia_Llama-3_3-Nemotron-Super-49B-v1_5_Off"] == (
        f"{NEMOTRON_49B}; 1 GPU here has 80 GiB"
    )
    assert got["Qwen_Qwen3-30B-A3B_Off"] == "to run"  # ~56 GiB

    qwen = [c for c in CONFIGS if "235B" in c.model_id]
    assert set(statuses(plans_of(qwen), h100, tmp_path).values()) == {
        "needs 2 GPUs; 1 usable on this host"
    }
    # Four GPUs of unequal memory: a run of two gets at most the two largest.
    mixed = slots_module.gpu_slots(
        ["GPU-a", "GPU-b", "GPU-c", "GPU-d"],
        memory_bytes=[80 * GIB, 141 * GIB, 141 * GIB, 80 * GIB],
    )
    assert set(statuses(plans_of(qwen), mixed, tmp_path).values()) == {
        f"{QWEN_235B}; 2 GPUs here have 282 GiB"
    }
    assert set(statuses(plans_of(qwen, class_c_gpus=4), mixed, tmp_path).values()) == {"to run"}
    # GPUs whose memory is not known hold anything.
    unknown = slots_module.gpu_slots(["GPU-a", "GPU-b"])
    assert set(statuses(plans_of(qwen), unknown, tmp_path).values()) == {"to run"}


# --- where a size comes from -----------------------------------------------------------------


def test_the_local_hub_cache_sizes_a_model_before_its_name_does(hub, monkeypatch, tmp_path):
    slots = cpu_host(monkeypatch, 64)
    memory = "this machine has 64 GiB"
    # No size in the name: the cached index gives 200 GB of bf16 weights, 100B parameters.
    cache_model(hub, "org/mystery", {"torch_dtype": "bfloat16"}, total_size=200 * 10**9)
    (mystery,) = one("org/mystery")
    assert statuses([mystery], slots, tmp_path) == {
        mystery.name: f"needs ~186 GiB for 100B bf16 weights; {memory}"
    }
    (in_fp32,) = one("org/mystery", "backend.torch_dtype=float32")
    assert statuses([in_fp32], slots, tmp_path) == {
        in_fp32.name: f"needs ~373 GiB for 100B fp32 weights; {memory}"
    }
    # The name says 70B, the cached float32 weights (one file) say 8B: the cache wins.
    cache_model(hub, "org/big-70B", {"dtype": "float32"}, single_file_bytes=32 * 10**9)
    (big,) = one("org/big-70B")
    assert statuses([big], slots, tmp_path) == {big.name: "to run"}  # ~15 GiB in bf16
    # Only a config in the cache: the name sizes it.
    cache_model(hub, "org/named-80B", {"torch_dtype": "bfloat16"})
    (named,) = one("org/named-80B")
    assert statuses([named], slots, tmp_path) == {
        named.name: f"needs ~149 GiB for 80B bf16 weights; {memory}"
    }
    # Quantized weights stay at least as large as stored, whatever the run's dtype.
    quantized = {"torch_dtype": "bfloat16", "quantization_config": {"quant_method": "mxfp4"}}
    cache_model(hub, "org/q-120b", quantized, total_size=70 * 10**9)
    (q,) = one("org/q-120b")
    assert statuses([q], slots, tmp_path) == {
        q.name: f"needs ~65 GiB for its quantized weights; {memory}"
    }


def test_a_local_folder_is_sized_from_its_weight_files(monkeypatch, tmp_path):
    slots = cpu_host(monkeypatch, 32)
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16"}))
    sparse(folder / "model-00001-of-00002.safetensors", 40 * 10**9)
    sparse(folder / "model-00002-of-00002.safetensors", 20 * 10**9)
    (plan,) = one(str(folder))
    assert statuses([plan], slots, tmp_path) == {
        plan.name: "needs ~56 GiB for 30B bf16 weights; this machine has 32 GiB"
    }
    index = {"metadata": {"total_size": 10 * 10**9}, "weight_map": {}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert statuses([plan], slots, tmp_path) == {plan.name: "to run"}  # the index is exact


def test_a_model_of_unknown_size_is_never_skipped(monkeypatch, tmp_path):
    slots = cpu_host(monkeypatch, 0.5)
    bare = tmp_path / "no-weights-here-70B"  # a folder's name is not a size
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16"}))
    plans = [
        *one("org/no-size-in-this-name"),
        *one(str(bare)),
        *one("org/Llama-3-70B-Instruct-AWQ"),  # quantized: its count of parameters is no size
        *one("org/model-8B", "backend.torch_dtype=auto"),  # the checkpoint's dtype is unknown
        *one(str(TINY_MODEL)),  # ~0.0002 GiB
    ]
    (sized,) = one("org/sized-1B")  # beside them, one whose size is known
    got = statuses([*plans, sized], slots, tmp_path)
    assert got.pop(sized.name).startswith("needs ~1.9 GiB for 1B bf16 weights; ")
    assert set(got.values()) == {"to run"}


# --- the warning about a missing token -------------------------------------------------------


def test_the_token_warning_names_hub_models_only_once_each_and_counts_the_rest(caplog):
    hub_ids = [f"org/m{i}" for i in range(7)]
    configs = [single_config(m) for m in [*hub_ids, str(TINY_MODEL)]]
    plans = plans_of([*configs, single_config(hub_ids[0], reasoning_state="On")])
    with caplog.at_level(logging.WARNING):
        warn_without_token(plans, token_found=False)
    (line,) = caplog.messages
    assert "7 Hub models" in line and line.endswith(
        "org/m0, org/m1, org/m2, org/m3, org/m4 and 2 more"
    )
    assert str(TINY_MODEL) not in line
    caplog.clear()
    warn_without_token(plans, token_found=True)
    warn_without_token(plans_of([single_config(str(TINY_MODEL))]), token_found=False)
    assert caplog.messages == []


def test_the_physical_memory_of_this_machine_is_read_without_a_dependency():
    memory = slots_module.host_memory_bytes()
    assert memory == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") > 0
    assert {s.memory_bytes for s in slots_module.cpu_slots(2)} == {memory}


def test_a_single_run_refuses_what_the_sweep_would_skip(monkeypatch, tmp_path, capsys):
    from orchestrator.commands.cli import main
    from orchestrator.execution import gpus

    cpu_host(monkeypatch, 64)
    monkeypatch.setattr(gpus, "inventory", list)
    out = tmp_path / "out"
    code = main(
        ["run", "--model", "Qwen/Qwen3-235B-A22B", "--runner", "local", "--output-dir", str(out)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"Qwen_Qwen3-235B-A22B_Off: {QWEN_235B}; this machine has 64 GiB" in err
    assert not (out / "individual_runs").exists()  # nothing was started
