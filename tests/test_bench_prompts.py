"""Prompt sources: bundled set, local files, Hub fallback, sample counts."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from energy_bench.config import load_config
from energy_bench.errors import BenchConfigError
from energy_bench.workload.prompts import BUNDLED, load_prompts

DEFAULT_SAMPLES = load_config("text_generation", ["backend.model=x"]).scenario.num_samples


def scenario(**overrides):
    items = ["backend.model=x"] + [f"scenario.{k}={v}" for k, v in overrides.items()]
    return load_config("text_generation", items).scenario


def test_bundled_set_is_large_and_varied():
    rows = [json.loads(line) for line in BUNDLED.read_text().splitlines()]
    assert len(rows) >= 200
    lengths = sorted(len(r["text"].split()) for r in rows)
    assert lengths[0] < 10 and lengths[-1] > 150
    assert {"encyclopedic", "web", "chat"} <= {r["kind"] for r in rows}
    assert len({r["text"] for r in rows}) == len(rows)


def test_num_samples_cuts_the_set():
    prompts = load_prompts(scenario(dataset_name="bundled", num_samples=7))
    assert len(prompts.texts) == 7 and prompts.source == "bundled"


@pytest.mark.parametrize("asked", [5000, DEFAULT_SAMPLES])
def test_more_samples_than_prompts_asked_for_warns_and_records(caplog, asked):
    with caplog.at_level(logging.WARNING):
        prompts = load_prompts(scenario(dataset_name="bundled", num_samples=asked))
    assert prompts.requested == asked and len(prompts.texts) == prompts.available >= 200
    assert f"num_samples={asked}" in caplog.text


def test_the_default_sample_count_takes_a_shorter_set_whole_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        prompts = load_prompts(scenario(dataset_name="bundled"))
    assert prompts.requested == DEFAULT_SAMPLES > prompts.available == len(prompts.texts)
    assert not caplog.records


def test_hub_unreachable_falls_back_to_bundled(monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING):
        prompts = load_prompts(scenario(dataset_name="EnergyStarAI/text_generation", num_samples=3))
    assert prompts.source == "bundled" and "unavailable" in caplog.text


@pytest.mark.parametrize("offline", [False, True], ids=["no-datasets-package", "offline"])
def test_the_default_dataset_falls_back_without_a_word_about_datasets(monkeypatch, caplog, offline):
    """The default config names the Hub dataset, which this installation cannot read: a run
    on the bundled set says nothing about the package that would read it."""
    monkeypatch.setitem(sys.modules, "datasets", None)  # not installed
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with caplog.at_level(logging.DEBUG):
        prompts = load_prompts(scenario())
    assert prompts.source == "bundled"
    assert "datasets" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_hub_dataset_asked_for_without_the_package_says_so(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "datasets", None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with caplog.at_level(logging.WARNING):
        prompts = load_prompts(scenario(dataset_name="EnergyStarAI/text_generation"))
    assert prompts.source == "bundled"
    assert "datasets" in caplog.text and "bundled" in caplog.text


@pytest.mark.parametrize("kind", ["csv", "jsonl", "txt"])
def test_local_files(tmp_path, kind):
    path = tmp_path / f"p.{kind}"
    if kind == "csv":
        path.write_text('id,text\n1,"first, with comma"\n2,second\n')
    elif kind == "jsonl":
        path.write_text('{"text": "first, with comma"}\n\n{"text": "second"}\n')
    else:
        path.write_text("first, with comma\n\nsecond\n")
    prompts = load_prompts(scenario(dataset_name=str(path)))
    assert prompts.texts == ["first, with comma", "second"]
    assert prompts.source == f"file:{path}"


def test_bad_local_files(tmp_path):
    with pytest.raises(BenchConfigError, match="file not found"):
        load_prompts(scenario(dataset_name=str(tmp_path / "missing.jsonl")))
    bad = tmp_path / "bad.csv"
    bad.write_text("question\nhello\n")  # neither task's column ("prompt" serves text runs too)
    with pytest.raises(BenchConfigError, match="no column 'text'"):
        load_prompts(scenario(dataset_name=str(bad)))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(BenchConfigError, match=r"broken\.jsonl:2: not JSON"):
        load_prompts(scenario(dataset_name=str(broken)))
    null = tmp_path / "null.jsonl"  # a null must not become the prompt "None"
    null.write_text('{"text": "a"}\n{"text": null}\n')
    with pytest.raises(BenchConfigError, match=r"null\.jsonl:2: 'text' is not text \(got null\)"):
        load_prompts(scenario(dataset_name=str(null)))
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"text": "a"}\n{"text": "  "}\n')
    assert load_prompts(scenario(dataset_name=str(blank))).texts == ["a"]
