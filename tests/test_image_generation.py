"""Text-to-image runs: the config, the diffusers backend on the tiny pipeline, the plan, the report.

The tiny pipeline (examples/tiny-image-pipeline, a FLUX-architecture pipeline of a few layers)
runs on the CPU in well under a second an image; the FLUX.1-dev shape is checked on the meta
device (no memory) and measured on an H200 by tools/image_gpu_check.py.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import CONTAINER, ROOT, TINY_PIPELINE
from fakes import fake_report, write_report

from energy_bench import contract
from energy_bench.backends.diffusion import (
    SHAPES_DIR,
    DiffusersBackend,
)
from energy_bench.cli import check_overrides
from energy_bench.config import _flatten, load_config
from energy_bench.errors import BenchConfigError
from orchestrator.commands.run import task_of
from orchestrator.commands.tables import image_lines
from orchestrator.execution.execute import adopt_attempt
from orchestrator.models.csv_reader import read_models_csv, single_config
from orchestrator.planning import plan as planning
from orchestrator.planning.plan import PlanOptions, plan_runs
from orchestrator.reports.gallery import THUMB_PX, gallery_html, thumbnail
from orchestrator.reports.ratings import rate
from orchestrator.store.paths import OutputLayout

IMAGE = contract.IMAGE_CONFIG_NAME
SMALL = ["scenario.height=64", "scenario.width=64", "scenario.num_inference_steps=3"]


def image_config(*overrides: str):
    return load_config(IMAGE, [f"backend.model={TINY_PIPELINE}", *overrides])


# --- the benchmark, end to end on the CPU ------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("tiny-image-run")
    command = [
        sys.executable, "-m", "energy_bench", "--config-name", IMAGE,
        "--results-dir", str(results), f"backend.model={TINY_PIPELINE}",
        "scenario.num_samples=5", "scenario.repeats=2", "scenario.save_images=3",
        "scenario.height=128", "scenario.width=192", "energy.idle_seconds=0.2",
    ]  # fmt: skip
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(CONTAINER)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return results, json.loads((results / contract.REPORT_FILE).read_text()), done.stderr


def test_a_cpu_run_of_the_tiny_pipeline_writes_every_result_file(tiny_run):
    results, report, _ = tiny_run
    for name in contract.RESULT_FILES:
        assert (results / name).is_file(), name
    assert contract.report_problem(report) == ""  # the host reads it as any run's
    assert report["generation_path"] == contract.GENERATION_DIFFUSION
    assert report["summary"]["prompt_source"] == "bundled"  # the bundled image prompts
    summary = json.loads((results / contract.ENERGY_SUMMARY_FILE).read_text())
    assert summary["prefill_wh"] is None and summary["decode_wh"] is None
    assert summary["total"] == report["energy"]["gpu_energy_wh"] > 0


def test_a_cpu_run_counts_one_image_per_prompt_and_no_tokens(tiny_run):
    results, report, _ = tiny_run
    images, summary, energy = report["images"], report["summary"], report["energy"]
    assert images["images"] == 5 and summary["successful_prompts"] == 5
    assert images["pipeline"] == "FluxPipeline" and images["family"] == "flux"
    assert (images["num_inference_steps"], images["resolution"]) == (30, "192x128")
    assert images["guidance_scale"] == 3.5 and images["guidance_scale_given"] is False
    assert images["classifier_free_guidance"] is False
    assert images["images_per_second"] == pytest.approx(5 / summary["total_duration_seconds"])
    assert energy["wh_per_1000_queries"] == pytest.approx(energy["gpu_energy_wh"] / 5 * 1000)
    for key in ("total_tokens", "throughput_tokens_per_second", "avg_time_to_first_token"):
        assert summary[key] is None, key
    assert energy["tokens_per_joule"] is None
    with (results / contract.PER_PROMPT_FILE).open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and {r["repeat"] for r in rows} == {"0", "1"}  # no warmup rows
    assert {(r["images"], r["prompt_tokens"], r["ok"]) for r in rows} == {("1", "0", "True")}
    assert report["provenance"]["dtype"] == "torch.float32"  # auto: float32 on the CPU


def test_a_cpu_run_measures_a_pass_alone_after_two_pipeline_calls(tiny_run):
    results, report, _ = tiny_run
    energy = report["energy"]
    assert [w["name"] for w in energy["warmup_windows"]] == ["warmup_0", "warmup_1"]
    assert report["summary"]["warmup"] == "2 pipeline calls"
    for p in energy["repeats"]:
        assert p["prefill_window"] is None and p["prefill_j"] is None and p["decode_j"] is None
    with (results / contract.POWER_TRACE_FILE).open() as f:
        windows = {row["window"] for row in csv.DictReader(f)}
    assert not any(w.startswith("prefill") for w in windows)


def test_a_run_keeps_the_first_images_asked_for_as_pngs(tiny_run):
    results, report, stderr = tiny_run
    kept = sorted((results / contract.IMAGES_DIR).iterdir())
    assert [p.name for p in kept] == [contract.image_file(i) for i in range(3)]
    from PIL import Image

    with Image.open(kept[0]) as first:
        assert first.size == (192, 128) and first.format == "PNG"
    assert report["images"]["saved_images"] == 3
    assert "images/s" in stderr.splitlines()[-1]  # the closing line speaks of images


# --- the config --------------------------------------------------------------------------------


def test_the_image_config_holds_the_protocol():
    cfg = image_config()
    image = cfg.scenario.image
    assert (image.steps, image.height, image.width) == (30, 1024, 1024)
    assert image.guidance_scale is None and image.save_images == 0
    assert cfg.scenario.batch_size == 1 and cfg.scenario.warmup_pass is False
    assert cfg.scenario.warmup_runs == 2 and cfg.scenario.text_column_name == "prompt"
    assert cfg.scenario.dataset_name == "EnergyStarAI/image_generation"
    assert cfg.scenario.reasoning.enabled is None and cfg.scenario.max_new_tokens == 0
    assert cfg.backend.type == "diffusers" and cfg.backend.num_gpus == 1
    raw = yaml.safe_load((CONTAINER / "configs" / f"{IMAGE}.yaml").read_text())
    # the host's defaults (the plan table, timeouts) are the config's
    assert raw["scenario"]["num_inference_steps"] == planning.IMAGE_STEPS
    assert raw["scenario"]["height"] == raw["scenario"]["width"] == planning.IMAGE_SIDE
    assert raw["scenario"]["warmup_runs"] == planning.IMAGE_WARMUP_RUNS


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("scenario.height=1000", "scenario.height=1000: expected a multiple of 16"),
        ("scenario.width=0", "scenario.width=0: must be at least 16"),
        ("backend.num_gpus=2", "backend.num_gpus=2: an image pipeline runs on one GPU"),
        ("backend.type=pytorch", "backend.type='pytorch': expected one of diffusers"),
        ("scenario.num_inference_steps=0", "scenario.num_inference_steps=0: must be at least 1"),
        ("scenario.guidance_scale=-1", "scenario.guidance_scale=-1: must be at least 0"),
        ("scenario.save_images=-2", "scenario.save_images=-2: must be at least 0"),
        ("scenario.generate_kwargs.max_new_tokens=5", "unknown config key"),
    ],
)
def test_the_image_config_refuses_what_no_run_can_do(override, message):
    with pytest.raises(BenchConfigError, match="^" + message.replace("(", r"\(")):
        image_config(override)


def test_the_host_checks_image_overrides_against_the_image_config(capsys, monkeypatch):
    lines = [
        json.dumps({"config_name": IMAGE, "overrides": ["backend.model=m", "scenario.height=64"]}),
        json.dumps({"config_name": IMAGE, "overrides": ["backend.model=m", "scenario.repeats=0"]}),
        json.dumps(["backend.model=m", "scenario.height=64"]),  # a plain array: text generation
    ]
    code = check_overrides(contract.CONFIG_NAME, CONTAINER / "configs", lines)
    answers = [json.loads(line)["problem"] for line in capsys.readouterr().out.splitlines()]
    assert code == contract.ExitCode.CONFIG_ERROR
    assert answers[0] == ""
    assert answers[1] == "scenario.repeats=0: must be at least 1"
    assert answers[2].startswith("unknown config key 'scenario.height'")


# --- families and pipelines --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "pipeline"),
    [
        ("Qwen/Qwen-Image", "QwenImagePipeline"),
        ("black-forest-labs/FLUX.1-dev", "FluxPipeline"),
        ("HiDream-ai/HiDream-I1-Full", "HiDreamImagePipeline"),
        (str(TINY_PIPELINE), "FluxPipeline"),  # a local folder: by its model_index.json
    ],
)
def test_each_image_family_is_loaded_by_its_own_pipeline_class(model, pipeline):
    family = contract.image_family(model)
    assert family is not None and family.pipeline == pipeline
    import diffusers

    assert hasattr(diffusers, pipeline)  # the pinned diffusers has every family's class


def test_a_model_of_no_known_family_has_none(tmp_path):
    assert contract.image_family("org/some-model") is None
    assert contract.image_family(str(tmp_path)) is None  # a folder without model_index.json
    (tmp_path / contract.MODEL_INDEX_FILE).write_text("not json")
    assert contract.image_family(str(tmp_path)) is None


def test_a_local_folder_s_family_is_its_pipeline_s_not_its_path_s(tmp_path):
    flux = tmp_path / "qwen-image-experiments" / "tiny"  # a FLUX pipeline, a misleading path
    shutil.copytree(TINY_PIPELINE, flux)
    assert contract.image_family(str(flux)).pipeline == "FluxPipeline"
    text = tmp_path / "flux-team" / "Qwen3-0.6B"  # a text model under a FLUX team's folder
    text.mkdir(parents=True)
    (text / "config.json").write_text("{}")
    assert contract.image_family(str(text)) is None
    assert task_of(str(text), "text_generation") == "text_gen"
    other = tmp_path / "sd3"  # a pipeline of no known family: an image run all the same
    other.mkdir()
    (other / contract.MODEL_INDEX_FILE).write_text('{"_class_name": "StableDiffusion3Pipeline"}')
    assert contract.image_family(str(other)) is None
    assert task_of(str(other), "text_generation") == "image_gen"


def test_each_config_s_own_keys_are_those_the_contract_routes():
    keys = {}
    for name in contract.CONFIG_NAMES.values():
        tree = yaml.safe_load((CONTAINER / "configs" / f"{name}.yaml").read_text())
        keys[name] = set(_flatten(tree))  # the config loader's own keys
    text, image = keys[contract.CONFIG_NAME], keys[IMAGE]
    assert all(contract.override_applies(contract.CONFIG_NAME, k) for k in text)
    assert all(contract.override_applies(IMAGE, k) for k in image)
    assert not any(contract.override_applies(IMAGE, k) for k in text - image)
    assert not any(contract.override_applies(contract.CONFIG_NAME, k) for k in image - text)
    for name, only in contract.CONFIG_ONLY_KEYS.items():
        other = image if name == contract.CONFIG_NAME else text
        for key in only:
            assert any(k == key or k.startswith(key + ".") for k in keys[name]), key
            assert not any(k == key or k.startswith(key + ".") for k in other), key


def test_a_sweep_s_overrides_reach_the_runs_whose_config_has_their_key(tmp_path):
    from orchestrator.errors import RunnerError
    from orchestrator.planning.checks import check_benchmark_overrides, check_overrides_reach

    rows = read_models_csv(ROOT / "examples" / "demo_models.csv")
    extra = ("backend.generation=eager", "scenario.height=128", "scenario.repeats=2")
    plans = plan_runs(rows, options(extra_overrides=extra))
    text = [p for p in plans if not p.is_image]
    (image,) = [p for p in plans if p.is_image]
    assert all(p.overrides[-2:] == ("backend.generation=eager", "scenario.repeats=2") for p in text)
    assert image.overrides[-2:] == ("scenario.height=128", "scenario.repeats=2")
    check_benchmark_overrides(plans)  # each run's config takes all it was given
    check_overrides_reach(plans, options(extra_overrides=extra))
    only_image = plan_runs([image.config], options(extra_overrides=extra))
    with pytest.raises(RunnerError, match=r"backend\.generation=eager: only text_gen runs take"):
        check_overrides_reach(only_image, options(extra_overrides=extra))
    typo = plan_runs(rows, options(extra_overrides=("scenario.heigth=128",)))
    assert all("scenario.heigth=128" in p.overrides for p in typo)  # refused by the check


BUNDLED_SHAPES = {
    "FluxPipeline": {  # FLUX.1-dev
        "transformer": 11_901_408_320,
        "text_encoder_2": 4_762_310_656,  # T5-XXL's encoder
        "text_encoder": 123_060_480,  # CLIP ViT-L/14's text model
        "vae": 83_819_683,
    },
    "QwenImagePipeline": {  # Qwen-Image
        "transformer": 20_430_401_088,
        "text_encoder": 8_292_166_656,  # Qwen2.5-VL-7B-Instruct, its vision tower included
        "vae": 126_892_531,
    },
}


SHAPE_COUNTS = """
import json, resource, sys
import diffusers, torch
from energy_bench.backends.diffusion import SHAPES_DIR, random_pipeline
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))  # built for real: fail, not swap
name = sys.argv[1]
pipe = random_pipeline(getattr(diffusers, name), SHAPES_DIR / name, "meta", torch.bfloat16)
parts = {k: v for k, v in pipe.components.items() if isinstance(v, torch.nn.Module)}
print(json.dumps({
    "counts": {k: sum(p.numel() for p in v.parameters()) for k, v in parts.items()},
    "devices": sorted({p.device.type for v in parts.values() for p in v.parameters()}),
    "vae_scale_factor": pipe.vae_scale_factor,
    "lengths": [getattr(pipe, t).model_max_length for t in ("tokenizer", "tokenizer_2")
                if getattr(pipe, t, None) is not None],
}))
"""


@pytest.mark.parametrize("pipeline", sorted(BUNDLED_SHAPES))
def test_a_bundled_shape_has_its_model_s_parameters(pipeline):
    assert sorted(p.name for p in SHAPES_DIR.iterdir()) == sorted(BUNDLED_SHAPES)
    # A process of its own, on the meta device: nothing of billions of parameters is allocated.
    command = [sys.executable, "-c", SHAPE_COUNTS, pipeline]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=CONTAINER)
    assert done.returncode == 0, done.stderr[-2000:]
    shape = json.loads(done.stdout.splitlines()[-1])
    assert shape["counts"] == BUNDLED_SHAPES[pipeline] and shape["devices"] == ["meta"]
    assert shape["vae_scale_factor"] == 8
    if pipeline == "FluxPipeline":  # stand-in tokenizers of the real lengths
        assert shape["lengths"] == [77, 512]


def test_no_weights_builds_the_pipeline_from_a_folder_s_configs(tmp_path):
    folder = tmp_path / "pipeline"
    shutil.copytree(TINY_PIPELINE, folder)
    for name in ("tokenizer", "tokenizer_2"):  # a shape without vocabularies: stand-ins
        (folder / name / "tokenizer.json").unlink()
    cfg = load_config(IMAGE, [f"backend.model={folder}", "backend.no_weights=True", *SMALL])
    random = DiffusersBackend(cfg.backend, cfg.scenario)
    random.load()
    real_cfg = image_config(*SMALL)
    real = DiffusersBackend(real_cfg.backend, real_cfg.scenario)
    real.load()
    assert random.component_parameters == real.component_parameters
    assert random.provenance()["no_weights"] is True
    stand_in = random.pipe.tokenizer_2("a red fox in fresh snow", padding="max_length")
    assert len(stand_in["input_ids"]) == 128  # the configured length, as the real one pads
    seen = []  # the image tokens of each transformer call, as the pipeline hands them over
    random.pipe.transformer.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(kwargs["hidden_states"].shape[1]), with_kwargs=True
    )
    random.seed(1)
    (batch,) = random.prepare(["a red fox"])
    made = random.generate(batch)
    assert len(made.images) == 1 and made.images[0].size == (64, 64)
    assert len(seen) == 3 and made.work_tokens == sum(seen)  # what the estimate counts ran


def test_no_weights_without_bundled_configs_names_what_is_bundled():
    model = "HiDream-ai/HiDream-I1-Full"
    cfg = load_config(IMAGE, [f"backend.model={model}", "backend.no_weights=True"])
    bundled = "bundled: FluxPipeline, QwenImagePipeline"
    with pytest.raises(BenchConfigError, match=f"for HiDreamImagePipeline \\({bundled}\\)"):
        DiffusersBackend(cfg.backend, cfg.scenario).load()


def test_a_missing_pipeline_folder_is_model_not_found(tmp_path):
    from energy_bench.errors import ModelNotFound

    cfg = load_config(IMAGE, [f"backend.model={tmp_path}/none"])
    with pytest.raises(ModelNotFound, match="does not exist"):
        DiffusersBackend(cfg.backend, cfg.scenario).load()


def _made(folder, *overrides):
    cfg = load_config(IMAGE, [f"backend.model={folder}", *SMALL, *overrides])
    backend = DiffusersBackend(cfg.backend, cfg.scenario)
    backend.load()
    (batch,) = backend.prepare(["a koi pond with lily pads"])
    backend.seed(7)
    return backend.protocol(), backend.generate(batch).images[0].tobytes()


def test_a_guidance_that_does_nothing_is_not_recorded(tmp_path, caplog):
    embedded = [_made(TINY_PIPELINE, f"scenario.guidance_scale={g}") for g in (1.0, 9.0)]
    assert [p["guidance_scale"] for p, _ in embedded] == [1.0, 9.0]
    assert embedded[0][1] != embedded[1][1]  # FLUX.1-dev's embedded guidance changes the image
    folder = tmp_path / "schnell-like"  # a transformer that embeds no guidance
    shutil.copytree(TINY_PIPELINE, folder)
    config = folder / "transformer" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "guidance_embeds": False}))
    none = [_made(folder, f"scenario.guidance_scale={g}") for g in (1.0, 9.0)]
    assert none[0][1] == none[1][1]  # the value changed nothing
    assert [(p["guidance_scale"], p["guidance_scale_given"]) for p, _ in none] == [(None, True)] * 2
    assert "scenario.guidance_scale=9.0 has no effect" in caplog.text
    assert _made(folder)[0]["guidance_scale"] is None  # nor a default that does nothing


def test_the_same_seed_makes_the_same_image():
    cfg = image_config(*SMALL)
    backend = DiffusersBackend(cfg.backend, cfg.scenario)
    backend.load()
    (batch,) = backend.prepare(["a koi pond with lily pads"])
    backend.seed(7)
    first = backend.generate(batch).images[0].tobytes()
    backend.seed(7)
    again = backend.generate(batch).images[0].tobytes()
    backend.seed(8)
    other = backend.generate(batch).images[0].tobytes()
    assert first == again and first != other


# --- the plan ----------------------------------------------------------------------------------


def options(**kw) -> PlanOptions:
    return PlanOptions(**{"image": "img:1", "software_id": "sw", **kw})


def test_the_models_csv_image_rows_resolve_to_their_pipeline_and_protocol():
    rows = [c for c in read_models_csv(ROOT / "models.csv") if c.task.value == "image_gen"]
    plans = plan_runs(rows, options(num_prompts=50))
    assert [p.name for p in plans] == [
        "Qwen_Qwen-Image_NA",
        "black-forest-labs_FLUX.1-dev_NA",
        "HiDream-ai_HiDream-I1-Full_NA",
    ]
    assert {p.config_name for p in plans} == {IMAGE}
    assert [p.setting("backend.pipeline") for p in plans] == [
        "QwenImagePipeline",
        "FluxPipeline",
        "HiDreamImagePipeline",
    ]
    hidream = plans[2]
    assert hidream.setting("backend.text_encoder_4") == "meta-llama/Llama-3.1-8B-Instruct"
    assert all(p.setting("scenario.num_samples") == "50" for p in plans)
    assert not any(
        o.startswith(("scenario.reasoning", "scenario.generate")) for o in plans[0].overrides
    )
    lines = image_lines(plans)
    assert lines[1] == (
        "black-forest-labs_FLUX.1-dev_NA: FluxPipeline; one image a prompt, 1024x1024, "
        "30 steps, guidance the pipeline's default"
    )
    assert "HiDreamImagePipeline + text_encoder_4=meta-llama/Llama-3.1-8B-Instruct" in lines[2]


def test_an_image_row_s_yaml_sets_its_protocol_and_its_extra_encoder(tmp_path):
    models = tmp_path / "models.csv"
    models.write_text(
        ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"
        ',HiDream-ai/HiDream-I1-Full,1,,image_gen,,"text_encoder_4: my/llama\n'
        'num_inference_steps: 50\nheight: 768\nguidance_scale: 3.0"\n'
    )
    (plan,) = plan_runs(read_models_csv(models), options())
    assert plan.overrides == (
        "backend.model=HiDream-ai/HiDream-I1-Full",
        "backend.pipeline=HiDreamImagePipeline",
        "backend.text_encoder_4=my/llama",
        "scenario.num_inference_steps=50",
        "scenario.height=768",
        "scenario.guidance_scale=3.0",
    )
    (line,) = image_lines([plan])
    assert line.endswith(
        "+ text_encoder_4=my/llama; one image a prompt, 1024x768, 50 steps, guidance 3.0"
    )
    config = load_config(IMAGE, list(plan.overrides))  # the benchmark takes them
    assert config.backend.extras == {"text_encoder_4": "my/llama"}


HEAD = ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"


@pytest.mark.parametrize("key", ["num_inference_step", "num_gpus", "batch_size"])
def test_an_image_row_s_yaml_refuses_a_key_it_cannot_set(tmp_path, key):
    from orchestrator.errors import ConfigError

    models = tmp_path / "models.csv"
    models.write_text(HEAD + f',black-forest-labs/FLUX.1-dev,1,,image_gen,,"{key}: 8"\n')
    with pytest.raises(ConfigError, match=f"models.csv:2.*takes only num_inference_steps.*{key}"):
        read_models_csv(models)


def test_an_image_row_s_local_encoder_is_checked_and_mounted(tmp_path):
    from orchestrator.errors import RunnerError
    from orchestrator.planning.checks import check_local_models

    models = tmp_path / "models.csv"
    models.write_text(
        HEAD + ',HiDream-ai/HiDream-I1-Full,1,,image_gen,,"text_encoder_4: ./llama"\n'
    )
    (plan,) = plan_runs(read_models_csv(models), options())
    llama = tmp_path / "llama"
    assert plan.setting("backend.text_encoder_4") == str(llama)  # against the CSV's folder
    assert plan.read_only_paths == (llama,)  # mounted into the run's container
    with pytest.raises(RunnerError, match=f"models.csv:2 .*component folder {llama} does not"):
        check_local_models([plan])
    llama.mkdir()
    check_local_models([plan])


def test_an_image_run_s_default_timeout_grows_with_its_images_and_steps():
    flux = single_config(
        "black-forest-labs/FLUX.1-dev", reasoning_state="", model_class="", task="image_gen"
    )
    (plan,) = plan_runs([flux], options(num_prompts=10))
    (longer,) = plan_runs(
        [flux], options(num_prompts=10, extra_overrides=("scenario.num_inference_steps=60",))
    )
    (more,) = plan_runs([flux], options(num_prompts=20))
    load = planning.LOAD_S[None]
    assert plan.default_timeout_s == load + (10 + 2) * 30 * planning.STEP_S
    assert longer.default_timeout_s - load == 2 * (plan.default_timeout_s - load)
    assert more.default_timeout_s > plan.default_timeout_s


def test_one_prompts_file_serves_both_tasks(tmp_path):
    from energy_bench.workload.prompts import load_prompts

    text_file = tmp_path / "p.jsonl"
    text_file.write_text('{"text": "a red fox"}\n{"text": "a blue bird"}\n')
    image_file = tmp_path / "p.csv"
    image_file.write_text("prompt,text\na lighthouse,other\n")
    for path, want in [(text_file, ["a red fox", "a blue bird"]), (image_file, ["a lighthouse"])]:
        cfg = load_config(IMAGE, ["backend.model=m", f"scenario.dataset_name={path}"])
        assert load_prompts(cfg.scenario).texts == want
    text_cfg = load_config(
        "text_generation", ["backend.model=m", f"scenario.dataset_name={image_file}"]
    )
    assert load_prompts(text_cfg.scenario).texts == ["other"]  # the config's column first
    named = load_config(
        IMAGE,
        [
            "backend.model=m",
            f"scenario.dataset_name={text_file}",
            "scenario.text_column_name=prompt",
        ],
    )
    with pytest.raises(BenchConfigError, match="no 'prompt' field"):
        load_prompts(named.scenario)  # a column named is read as named


def test_a_model_on_the_command_line_is_an_image_run_by_its_family_or_folder():
    assert task_of("black-forest-labs/FLUX.1-schnell", "text_generation") == "image_gen"
    assert task_of(str(TINY_PIPELINE), "text_generation") == "image_gen"
    assert task_of("Qwen/Qwen3-0.6B", "text_generation") == "text_gen"
    assert task_of("org/anything", IMAGE) == "image_gen"


# --- results on the host -----------------------------------------------------------------------


def test_an_attempt_s_images_replace_the_run_folder_s(tmp_path):
    layout = OutputLayout(tmp_path)
    old = layout.images_dir("run")
    old.mkdir(parents=True)
    (old / contract.image_file(7)).write_bytes(b"old")
    attempt = tmp_path / "attempt"
    (attempt / contract.IMAGES_DIR).mkdir(parents=True)
    (attempt / contract.IMAGES_DIR / contract.image_file(0)).write_bytes(b"new")
    write_report(attempt, fake_report())
    adopt_attempt(layout, "run", attempt)
    assert [p.name for p in layout.images_dir("run").iterdir()] == [contract.image_file(0)]
    again = tmp_path / "attempt2"
    write_report(again, fake_report())
    adopt_attempt(layout, "run", again)  # an attempt that kept none leaves none
    assert not layout.images_dir("run").exists()


def test_image_runs_are_rated_apart_from_text_runs():
    def row(name, task, wh, cls=""):
        return {
            "run_name": name, "task": task, "model_class": cls, "gpu_name": "NVIDIA H200",
            "status": "ok", "energy_source": "nvml", "generation_path": "x",
            "wh_per_1000_queries": wh,
        }  # fmt: skip

    rated = rate(
        [
            row("text", "text_gen", 2.0, "A"),
            row("flux", "image_gen", 1000.0),
            row("qwen", "image_gen", 2000.0),
        ]
    )
    stars = {r.row["run_name"]: (r.stars, r.group) for r in rated}
    assert stars["text"][0] == 5 and stars["flux"][0] == 5 and stars["qwen"][0] == 1
    assert stars["flux"][1] == stars["qwen"][1] == "image_gen / NVIDIA H200 / x path"


def test_the_leaderboard_shows_an_image_run_s_kept_images_as_thumbnails(tmp_path, tiny_run):
    results, _, _ = tiny_run
    layout = OutputLayout(tmp_path)
    shutil.copytree(results / contract.IMAGES_DIR, layout.images_dir("pics_NA"))
    rows = [
        {"run_name": "pics_NA", "task": "image_gen", "status": "ok"},
        {"run_name": "text_Off", "task": "text_gen", "status": "ok"},
    ]
    page = gallery_html(rate(rows), layout)
    assert page.count('<img src="data:image/png;base64,') == 3
    assert 'alt="pics_NA: image_0000.png"' in page and "text_Off" not in page
    assert gallery_html(rate(rows[1:]), layout) == ""
    from PIL import Image

    small = Image.open(io.BytesIO(thumbnail(layout.images_dir("pics_NA") / "image_0000.png")))
    assert small.size[0] == THUMB_PX


def test_the_demo_plan_shows_its_image_row(capsys):
    from orchestrator.commands.sweep import sweep_cli

    demo = str(ROOT / "examples" / "demo_models.csv")
    assert sweep_cli(["--csv", demo, "--dry-run", "--runner", "local"]) == 0
    text = capsys.readouterr().out
    assert "tiny-image-pipeline_NA: FluxPipeline; one image a prompt, 256x256, 10 steps" in text


def test_a_random_component_is_built_in_the_run_s_dtype(monkeypatch):
    import diffusers
    import torch

    from energy_bench.backends import diffusion

    seen = []
    build = diffusers.AutoencoderKL.from_config
    monkeypatch.setattr(
        diffusers.AutoencoderKL,
        "from_config",
        lambda config: seen.append(torch.get_default_dtype()) or build(config),
    )
    vae = diffusion._random_component(
        TINY_PIPELINE / "vae", "diffusers", "AutoencoderKL", torch.bfloat16
    )
    assert seen == [torch.bfloat16]  # never in float32 first (twice the memory)
    assert {p.dtype for p in vae.parameters()} == {torch.bfloat16}
    assert torch.get_default_dtype() == torch.float32  # put back


def test_a_local_run_s_software_id_changes_with_the_diffusers_version(monkeypatch):
    from importlib import metadata

    from orchestrator.execution.runners import local

    version = metadata.version
    before = local.package_digest()
    monkeypatch.setattr(
        local.metadata, "version", lambda p: "9.9.9" if p == "diffusers" else version(p)
    )
    assert local.package_digest() != before
    assert "diffusers" in local.BENCHMARK_LIBRARIES  # a host without it runs no image row
