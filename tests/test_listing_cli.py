"""``python model_config_parser.py``: the table, the JSON and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "model_config_parser.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": ""},
    )


def test_lists_all_rows_by_default():
    result = run()
    assert result.returncode == 0, result.stderr
    assert "60 of 60 rows" in result.stdout
    assert "openai/gpt-oss-20b" in result.stdout and "HiDream-ai/HiDream-I1-Full" in result.stdout


def test_json_schema_and_filters():
    result = run("models.csv", "--model-name", "gpt-oss", "--reasoning-state", "on", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 6
    for row in rows:
        assert {
            "model_id",
            "priority",
            "model_class",
            "task",
            "reasoning_state",
            "reasoning",
            "max_new_tokens",
            "min_new_tokens",
            "line",
        } <= row.keys()
        assert row["reasoning"]["enabled"] is True and row["reasoning"]["control"] == "harmony"
        assert row["reasoning"]["effort"] in {"high", "medium", "low"}
    assert [r["line"] for r in rows] == [2, 5, 8, 14, 17, 20]


def test_class_filter_on_the_command_line():
    rows = json.loads(run("--class", "b", "--json").stdout)
    assert len(rows) == 14 and {r["model_class"] for r in rows} == {"B"}


def test_bad_csv_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        ",Models to Add,Priority (1=hi),Class,Task,Reasoning State\n,org/m,1,Z,text_gen,Off\n"
    )
    result = run(str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {bad}:2: column 'Class': unknown class; expected A, B or C (got 'Z')"
    )
    assert "Traceback" not in result.stderr


def test_missing_file_exit_2(tmp_path):
    result = run(str(tmp_path / "missing.csv"))
    assert result.returncode == 2 and "file not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
