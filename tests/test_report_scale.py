"""Scale: the master CSV updated run by run, labels for the best run per group, large reports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile

import pytest
from fakes import fake_report, write_report

from orchestrator.reports import plots
from orchestrator.reports.build import make_report
from orchestrator.reports.leaderboard import PAGE_ROWS
from orchestrator.store import master
from orchestrator.store.master import rebuild_master, update_master
from orchestrator.store.paths import OutputLayout
from orchestrator.store.records import RunRecord, save_record

GPUS = ("NVIDIA H200", "NVIDIA H100 80GB HBM3")


def add_run(out, i, *, status="ok", energy_wh=None, trace=False):
    name = f"org_m{i:04d}_Off"
    folder = out / "individual_runs" / name
    save_record(
        folder,
        RunRecord(
            run_id=f"id{i:04d}", name=name, model_id=f"org/m{i:04d}", model_class="AB"[i % 2],
            task="text_gen", reasoning_state="Off", status=status, duration_s=10.0 + i,
            error_message="" if status == "ok" else "out_of_memory: CUDA out of memory",
            finished_at="2026-11-29T00:00:00+00:00",
        ),
    )  # fmt: skip
    if status == "ok":
        wh = energy_wh if energy_wh is not None else 0.1 + (i * 37 % 100) / 50
        write_report(folder, fake_report(energy_wh=wh, gpu=GPUS[i // 2 % 2]))
    if trace:
        rows = "".join(f"{t / 10:.1f},0,GPU-0,repeat_0,{150 + t % 9},1980,40,\n" for t in range(40))
        (folder / "power_trace.csv").write_text(
            "t_s,device,device_uuid,window,power_w,sm_clock_mhz,temperature_c,energy_j\n" + rows
        )
    return name


def master_text(out):
    return OutputLayout(out).master_csv.read_text()


def rows_by_name(text):
    import csv
    import io

    return {row["run_name"]: row for row in csv.DictReader(io.StringIO(text))}


# --- the master CSV, run by run ---------------------------------------------------------------
def test_update_master_reads_only_the_named_runs(tmp_path, monkeypatch):
    names = [add_run(tmp_path, i) for i in range(6)]
    rebuild_master(tmp_path)
    before = rows_by_name(master_text(tmp_path))
    add_run(tmp_path, 1, energy_wh=9.0)  # finished again: named
    add_run(tmp_path, 3, energy_wh=7.0)  # changed behind the sweep's back: not named
    looked_at = []
    real_stamp = master._stamp
    monkeypatch.setattr(master, "_stamp", lambda f: looked_at.append(f.name) or real_stamp(f))
    update_master(tmp_path, [names[1]])
    assert looked_at == [names[1]]  # no other folder is even looked at
    after = rows_by_name(master_text(tmp_path))
    assert after[names[1]]["gpu_energy_wh"] == "9.0"
    assert after[names[3]] == before[names[3]]  # as cached, until a full rebuild
    assert {n: r for n, r in after.items() if n != names[1]} == {
        n: r for n, r in before.items() if n != names[1]
    }
    monkeypatch.undo()
    rebuild_master(tmp_path)
    assert rows_by_name(master_text(tmp_path))[names[3]]["gpu_energy_wh"] == "7.0"


def test_update_master_gives_the_csv_of_a_full_rebuild(tmp_path):
    names = [add_run(tmp_path, i) for i in range(8)]
    rebuild_master(tmp_path)
    add_run(tmp_path, 2, energy_wh=3.5)  # a rerun
    add_run(tmp_path, 4, status="failed")  # a rerun that failed
    new = add_run(tmp_path, 20)  # a new run
    (tmp_path / "individual_runs" / names[5] / "run_record.json").write_text('{"x": 1')
    shutil.rmtree(tmp_path / "individual_runs" / names[6])  # a folder removed
    update_master(tmp_path, [names[2], names[4], new, names[5], names[6]])
    updated = master_text(tmp_path)
    rows = rows_by_name(updated)
    assert names[6] not in rows and rows[new]["status"] == "ok"
    assert rows[names[5]]["status"] == "corrupt_result" and rows[names[4]]["status"] == "failed"
    OutputLayout(tmp_path).master_cache.unlink()
    rebuild_master(tmp_path)
    assert master_text(tmp_path) == updated


@pytest.mark.parametrize("cache", [None, "{not json", '{"key": "other", "runs": {}}'])
def test_update_master_without_a_usable_cache_rebuilds(tmp_path, cache):
    names = [add_run(tmp_path, i) for i in range(3)]
    rebuild_master(tmp_path)
    expected = master_text(tmp_path)
    layout = OutputLayout(tmp_path)
    if cache is None:
        layout.master_cache.unlink()
    else:
        layout.master_cache.write_text(cache)
    layout.master_csv.unlink()
    update_master(tmp_path, [names[0]])
    assert master_text(tmp_path) == expected
    update_master(tmp_path, ["../elsewhere", ""])  # never a folder outside: a full rebuild
    assert master_text(tmp_path) == expected


# --- labels ----------------------------------------------------------------------------------
def test_labels_are_drawn_for_the_best_run_of_each_group_by_default(tmp_path):
    # Groups: class A and class B (text generation), each on two GPU models.
    for i in range(6):
        add_run(tmp_path, i, energy_wh=1.0 + i)
    add_run(tmp_path, 6, status="failed")
    files = make_report(tmp_path)
    drawn = sorted(p.name for p in files.labels if p.suffix == ".png")
    # The least energy of each group wins: runs 0 (A, H200), 1 (B, H200), 2 (A, H100), 3 (B, H100).
    assert drawn == [f"org_m{i:04d}_Off.png" for i in range(4)]
    assert sorted(p.name for p in files.layout.labels.iterdir()) == sorted(
        p.name for p in files.labels
    )
    every = make_report(tmp_path, labels="all")
    assert len(every.labels) == 2 * 6
    again = make_report(tmp_path)  # the labels an earlier report drew beside them are removed
    assert len(list(again.layout.labels.iterdir())) == len(again.labels) == 8


# --- a report over a few hundred runs -------------------------------------------------------------
@pytest.fixture(scope="module")
def big(tmp_path_factory):
    out = tmp_path_factory.mktemp("big")
    for i in range(300):
        add_run(out, i, status="failed" if i % 25 == 0 else "ok", trace=i % 10 == 0)
    return out, make_report(out)


def test_a_report_over_hundreds_of_runs(big):
    _, files = big
    assert not files.problems
    assert len(files.labels) == 2 * 4  # two classes on two GPU models
    page = files.layout.leaderboard_html.read_text()
    data = re.search(
        r'<script type="application/json" id="leaderboard-data">(.*?)</script>', page, re.S
    )
    table = json.loads(data.group(1))
    assert len(table["rows"]) == 300 and table["page_rows"] == PAGE_ROWS
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    assert body.count("<tr") == PAGE_ROWS  # the first page only, as plain HTML
    assert page.count("<figure") == 4 and len(page) < 2_000_000
    with files.layout.leaderboard_csv.open() as f:
        assert sum(1 for _ in f) == 301


def test_plots_of_many_runs_are_drawn_per_group(big):
    out, _ = big
    from orchestrator.reports.ratings import rate
    from orchestrator.store.master import collect_rows

    rated = rate(collect_rows(out))
    energy = plots.energy_by_model(rated)
    assert "by comparison group" in energy and "org_m0001_Off" not in energy
    assert len(energy) < 200_000
    idle = plots.idle_split(rated)
    assert "mean of each group" in idle and len(idle) < 200_000
    scatter = plots.efficiency_scatter(rated)
    assert "best of each group" in scatter and len(scatter) < 400_000
    traces = plots.power_traces(rated, OutputLayout(out))
    assert f"Power traces of {plots.MAX_TRACES} of 300 runs" in traces  # 30 runs have one


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    pytest.skip("no Chromium (Debian package chromium)")


def test_the_page_shows_one_page_of_rows_and_moves_between_pages(big, tmp_path):
    binary = _chromium()
    _, files = big
    clicks = """<script>
document.getElementById('page-next').click();
document.getElementById('page-next').click();
document.body.setAttribute('data-info', document.getElementById('pager-info').textContent);
</script></body>"""
    page = tmp_path / "paged.html"
    page.write_text(files.layout.leaderboard_html.read_text().replace("</body>", clicks))
    profile = tempfile.mkdtemp()
    try:
        dom = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", f"--user-data-dir={profile}", "--dump-dom",
             page.as_uri()],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert 'data-info="runs 201-300 of 300, page 3 of 3"' in dom, dom[-500:]
    body = dom[dom.index("<tbody>") : dom.index("</tbody>")]
    assert body.count("<tr") == 100
