"""The text-to-image config: every key reaches the built config; a bad value names its key."""

from __future__ import annotations

import pytest

from energy_bench import contract
from energy_bench.config import (
    BackendConfig,
    EnergyConfig,
    ImageSettings,
    ReasoningConfig,
    ScenarioConfig,
    load_config,
)
from energy_bench.errors import BenchConfigError

IMAGE = contract.IMAGE_CONFIG_NAME


def test_every_image_key_given_reaches_the_built_config():
    scenario = [
        "scenario.dataset_name=bundled",
        "scenario.dataset_split=test",
        "scenario.text_column_name=text",
        "scenario.num_samples=1",
        "scenario.batch_size=2",
        "scenario.warmup_runs=0",
        "scenario.repeats=3",
        "scenario.seed=7",
        "scenario.num_inference_steps=4",
        "scenario.height=512",
        "scenario.width=768",
        "scenario.guidance_scale=3.5",
        "scenario.save_images=2",
    ]
    cfg = load_config(
        IMAGE,
        [
            "backend.model=org/flux",
            "backend.task=image_generation",
            'backend.pipeline=" FluxPipeline "',
            "backend.text_encoder_4=my/llama",
            "backend.torch_dtype=float16",
            "backend.no_weights=true",
            "backend.device=cpu",
            "backend.device_ids=1",
            *scenario,
            "energy.idle_seconds=1",
            "energy.sample_hz=20",
            "carbon.intensity_g_per_kwh=300",
        ],
    )
    assert cfg.backend == BackendConfig(
        type="diffusers",
        model="org/flux",
        processor=None,
        torch_dtype="float16",
        no_weights=True,
        device="cpu",
        num_gpus=1,
        trust_remote_code=False,
        generation=contract.GENERATION_DIFFUSION,
        device_ids=(1,),
        pipeline="FluxPipeline",
        extras={"text_encoder_4": "my/llama"},
    )
    assert cfg.scenario == ScenarioConfig(
        dataset_name="bundled",
        dataset_split="test",
        text_column_name="text",
        num_samples=1,
        batch_size=2,
        warmup_pass=False,
        warmup_runs=0,
        repeats=3,
        seed=7,
        reasoning=ReasoningConfig(enabled=None, control="none", effort=None),
        max_new_tokens=0,
        min_new_tokens=0,
        given=frozenset(item.partition("=")[0] for item in scenario),
        image=ImageSettings(steps=4, height=512, width=768, guidance_scale=3.5, save_images=2),
    )
    assert cfg.name == IMAGE and cfg.raw["scenario"]["height"] == 512
    assert cfg.energy == EnergyConfig(
        idle_seconds=1.0, sample_hz=20.0, carbon_intensity_g_per_kwh=300.0
    )


def test_an_image_config_left_to_its_defaults_picks_no_pipeline_extras_or_gpus():
    backend = load_config(IMAGE, ["backend.model=org/flux"]).backend
    assert (backend.pipeline, backend.extras, backend.device_ids) == (None, {}, None)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("backend.task=fly",
         "backend.task='fly': expected one of text-to-image, image_generation"),
        ("backend.num_gpus=0", "backend.num_gpus=0: must be at least 1"),
        ("backend.num_gpus=2", "backend.num_gpus=2: an image pipeline runs on one GPU"),
        ("backend.torch_dtype=float8",
         "backend.torch_dtype='float8': expected one of bfloat16, float16, float32, auto"),
        ("backend.no_weights=null", "backend.no_weights=None: expected true, false"),
        ("backend.device=tpu", "backend.device='tpu': expected one of auto, cuda, cpu"),
        ("scenario.num_samples=0", "scenario.num_samples=0: must be at least 1"),
        ("scenario.batch_size=0", "scenario.batch_size=0: must be at least 1"),
        ("scenario.warmup_runs=-1", "scenario.warmup_runs=-1: must be at least 0"),
        ("scenario.repeats=0", "scenario.repeats=0: must be at least 1"),
        ("scenario.num_inference_steps=0", "scenario.num_inference_steps=0: must be at least 1"),
        ("scenario.height=1000", "scenario.height=1000: expected a multiple of 16 up to 16384"),
        ("scenario.width=8", "scenario.width=8: must be at least 16"),
        ("scenario.width=16400", "scenario.width=16400: expected a multiple of 16 up to 16384"),
        ("scenario.height=null", "scenario.height=None: expected a whole number of pixels"),
        ("scenario.guidance_scale=-1", "scenario.guidance_scale=-1: must be at least 0.0"),
        ("scenario.save_images=-1", "scenario.save_images=-1: must be at least 0"),
    ],
)  # fmt: skip
def test_an_image_setting_no_run_can_use_is_refused_with_its_key_and_value(override, message):
    with pytest.raises(BenchConfigError) as raised:
        load_config(IMAGE, ["backend.model=org/flux", override])
    assert str(raised.value) == message


def test_an_image_side_may_be_any_multiple_of_16_up_to_16384():
    image = load_config(
        IMAGE, ["backend.model=org/flux", "scenario.height=16384", "scenario.width=16"]
    ).scenario.image
    assert (image.height, image.width) == (16384, 16)
