"""Prompt sources: bundled set, local files, Hub fallback, sample counts."""

from __future__ import annotations

import json
import logging

import pytest

from energy_bench.config import load_config
from energy_bench.errors import BenchConfigError
from energy_bench.workload.prompts import BUNDLED, load_prompts


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


def test_more_samples_than_prompts_warns_and_records(caplog):
    with caplog.at_level(logging.WARNING):
        prompts = load_prompts(scenario(dataset_name="bundled", num_samples=5000))
    assert prompts.requested == 5000 and len(prompts.texts) == prompts.available >= 200
    assert "num_samples=5000" in caplog.text


def test_hub_unreachable_falls_back_to_bundled(monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING):
        prompts = load_prompts(scenario(num_samples=3))
    assert prompts.source == "bundled" and "unavailable" in caplog.text


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
    bad.write_text("prompt\nhello\n")
    with pytest.raises(BenchConfigError, match="no column 'text'"):
        load_prompts(scenario(dataset_name=str(bad)))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(BenchConfigError, match=r"broken\.jsonl:2: not JSON"):
        load_prompts(scenario(dataset_name=str(broken)))
