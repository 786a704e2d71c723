"""Reports: leaderboard CSV and HTML (rendered in headless Chromium), labels, the archive."""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
import zipfile

import pytest
from fakes import fake_report

from orchestrator.reports.build import make_report
from orchestrator.store.master import rebuild_master
from orchestrator.store.records import RunRecord, save_record

TOKEN = "hf_ReportTokenMustNotLeak99"
REQUIRE_BROWSER = os.environ.get("AI_ENERGY_SCORE_REQUIRE_BROWSER") == "1"


def add_run(
    out,
    name,
    *,
    cls="A",
    gpu="NVIDIA H200",
    wh=1.0,
    status="ok",
    source="nvml",
    short=False,
    repeats=3,
    cv=0.02,
    task="text_gen",
):
    folder = out / "individual_runs" / name
    log = out / "logs" / f"{name}_20261129-000000.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"loading model\nusing token {TOKEN} by mistake\ndone\n")
    save_record(
        folder,
        RunRecord(
            run_id=f"id-{name}",
            name=name,
            model_id=f"org/{name}",
            model_class=cls if task == "text_gen" else "",
            task=task,
            reasoning_state="Off" if task == "text_gen" else "",
            status=status,
            duration_s=30.0,
            finished_at="2026-11-29T10:00:00+00:00",
            error_message="" if status == "ok" else "out_of_memory: CUDA out of memory",
            log_path=str(log.relative_to(out)),
        ),
    )
    if status != "ok":
        return
    energy_wh = wh / 1000 * 100  # 100 successful prompts
    report = fake_report(
        energy_wh=energy_wh, source=source, gpu=gpu, repeats=repeats, cv=cv, short=short,
        throughput=50.0 + wh, idle_power_w=120.0, average_power_w=200.0,
    )  # fmt: skip
    (folder / "benchmark_report.json").write_text(json.dumps(report))
    (folder / "GPU_ENERGY_WH.txt").write_text(f"{energy_wh:.2f}\n")
    (folder / "GPU_ENERGY_SUMMARY.json").write_text(json.dumps({"units": "Wh", "total": energy_wh}))
    trace = "t_s,device,device_uuid,window,power_w,sm_clock_mhz,temperature_c,energy_j\n"
    trace += "".join(
        f"{t / 10:.1f},0,GPU-x,repeat_0,{150 + 30 * (t % 7)},1980,40,\n" for t in range(60)
    )
    (folder / "power_trace.csv").write_text(trace)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    add_run(out, "a_small", wh=10)
    add_run(out, "a_mid", wh=35)
    add_run(out, "a_big", wh=60)
    add_run(out, "b_one", cls="B", wh=200)
    add_run(out, "h100_run", gpu="NVIDIA H100 80GB HBM3", wh=5)
    add_run(out, "failed_run", status="failed")
    add_run(out, "short_run", wh=1, short=True)
    add_run(out, "cpu_est", gpu="cpu", source="estimate", wh=0.2, repeats=1)
    os.environ["HF_TOKEN"] = TOKEN
    try:
        files = make_report(out)
    finally:
        del os.environ["HF_TOKEN"]
    return out, files


def test_leaderboard_csv_stars_and_reasons(report):
    _, files = report
    with files.layout.leaderboard_csv.open(newline="") as f:
        rows = {r["run_name"]: r for r in csv.DictReader(f)}
    stars = {name: rows[name]["stars"] for name in rows}
    assert stars == {
        "a_small": "5",
        "a_mid": "3",
        "a_big": "1",
        "b_one": "5",
        "h100_run": "5",
        "cpu_est": "5",
        "failed_run": "",
        "short_run": "",
    }
    assert "only rated run" in rows["b_one"]["note"]
    assert "out_of_memory" in rows["failed_run"]["note"]
    assert "shorter than ten" in rows["short_run"]["note"]
    assert "estimated energy" in rows["cpu_est"]["note"]
    assert rows["h100_run"]["group"] != rows["a_small"]["group"]  # other GPU, rated apart


def test_labels_are_images_of_the_right_size(report):
    from PIL import Image

    _, files = report
    pngs = sorted(p.name for p in files.labels if p.suffix == ".png")
    # The best run of each rating group (a_mid and a_big are beaten by a_small).
    assert pngs == sorted(f"{n}.png" for n in ("a_small", "b_one", "h100_run", "cpu_est"))
    for path in files.labels:
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
                assert image.size == (600, 750)
                assert len(image.getcolors(maxcolors=100000) or []) > 10  # not blank
        else:
            root = ET.parse(path).getroot()
            assert root.tag.endswith("svg")
            assert "Wh" in path.read_text() or "glyph" in path.read_text()


def label_texts(svg: str) -> list[tuple[str, str]]:
    """Each text drawn on an SVG label and its fill colour, in drawing order.

    matplotlib draws text as glyph paths, each text's group preceded by a comment holding it.
    """
    found = re.findall(r"<!-- (.*?) -->\s*<g(?: style=\"fill: (#[0-9a-f]{6})\")?", svg)
    return [(html.unescape(text), colour or "#000000") for text, colour in found]


def test_labels_show_the_stars_and_the_figure_of_their_run(tmp_path):
    from orchestrator.reports.labels import STAR_COLOURS

    out = tmp_path / "sweep"
    for name, wh in (("a_low", 12.34), ("a_mid", 35), ("a_high", 61.8)):
        add_run(out, name, wh=wh)
    files = make_report(out, labels="all")
    svgs = {p.stem: p.read_text() for p in files.labels if p.suffix == ".svg"}
    # Five equal bands over 12.34-61.8 Wh: 35 lies in the third from the bottom.
    expected = {"a_low": (5, "12.34 Wh"), "a_mid": (3, "35 Wh"), "a_high": (1, "61.8 Wh")}
    assert set(svgs) == set(expected)
    for name, (stars, figure) in expected.items():
        texts = label_texts(svgs[name])
        drawn = [text for text, _ in texts]
        star_line = "\u2605" * stars + "\u2606" * (5 - stars)
        assert (star_line, STAR_COLOURS[stars]) in texts, (name, texts)
        assert sum(text.count("\u2605") for text in drawn) == stars
        assert figure in drawn and "GPU energy per 1,000 queries" in drawn
        assert f"org/{name}" in drawn and f"run id: id-{name}" in drawn
        assert "text_gen  ·  class A  ·  Off" in drawn
        assert "rated in: text_gen / class A / NVIDIA H200 / compiled path" in drawn


def test_an_image_run_s_label_counts_images_and_names_no_class(tmp_path):
    out = tmp_path / "sweep"
    add_run(out, "pics", wh=1028.8, task="image_gen")
    files = make_report(out, labels="all")
    (svg,) = [p.read_text() for p in files.labels if p.suffix == ".svg"]
    drawn = [text for text, _ in label_texts(svg)]
    assert "image_gen" in drawn and not any("class" in text for text in drawn)
    assert "GPU energy per 1,000 images" in drawn and "1029 Wh" in drawn


@pytest.mark.parametrize("grouped", [False, True], ids=["per-run", "per-group"])
@pytest.mark.parametrize(
    ("sources", "estimated"),
    [(("nvml", "nvml"), False), (("estimate", "estimate"), True), (("nvml", "estimate"), True)],
    ids=["measured", "estimated", "mixed"],
)
def test_plots_never_call_an_estimate_gpu_energy(
    tmp_path, monkeypatch, sources, estimated, grouped
):
    from orchestrator.reports import plots
    from orchestrator.reports.ratings import rate
    from orchestrator.store.master import collect_rows

    if grouped:
        monkeypatch.setattr(plots, "MAX_BARS", 1)
    out = tmp_path / "sweep"
    for i, source in enumerate(sources):
        add_run(out, f"run{i}", gpu="cpu" if source == "estimate" else "NVIDIA H200", source=source)
    rebuild_master(out)
    rated = rate(collect_rows(out))
    for svg in (plots.energy_by_model(rated), plots.idle_split(rated)):
        texts = [text for text, _ in label_texts(svg)]
        (xlabel,) = [t for t in texts if " Wh per " in t or t.startswith("Wh per ")]
        (title,) = [t for t in texts if t != xlabel and t.startswith(("Energy", "Estimated"))]
        if estimated:
            assert "estimate" in xlabel.lower() and "not measured" in xlabel, xlabel
            assert "GPU Wh" not in xlabel and "estimated" in title.lower(), title
        else:
            assert xlabel.startswith("GPU Wh per ") and "stimate" not in xlabel + title


def test_a_label_of_an_estimate_never_calls_it_gpu_energy(tmp_path):
    out = tmp_path / "sweep"
    add_run(out, "cpu_est", gpu="cpu", source="estimate", wh=0.2, repeats=1)
    (svg,) = [p.read_text() for p in make_report(out).labels if p.suffix == ".svg"]
    drawn = [text for text, _ in label_texts(svg)]
    assert "GPU energy per 1,000 queries" not in drawn
    assert "estimated energy per 1,000 queries (CPU, not measured)" in drawn


def test_archive_manifest_matches_and_holds_no_token(report):
    _, files = report
    with zipfile.ZipFile(files.layout.archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        names = set(zf.namelist()) - {"manifest.json"}
        assert names == set(manifest["files"])
        for name in names:
            data = zf.read(name)
            assert hashlib.sha256(data).hexdigest() == manifest["files"][name]
            assert TOKEN.encode() not in data
        assert "a_small/benchmark_report.json" in names and "a_small/GPU_ENERGY_WH.txt" in names
        assert any(n.startswith("a_small/logs/") for n in names)
        assert not any(n.startswith("failed_run/") for n in names)
        assert {r["run_name"] for r in manifest["runs"]} == {
            "a_small",
            "a_mid",
            "a_big",
            "b_one",
            "h100_run",
            "short_run",
            "cpu_est",
        }


def test_html_is_self_contained(report):
    _, files = report
    page = files.layout.leaderboard_html.read_text()
    assert not re.search(r"""(src|href)=["']https?:""", page)
    assert page.count("<figure") == 4 and page.count("<svg") >= 4


BOXES = """<script>
for (const el of document.querySelectorAll('table, figure')) {
  const r = el.getBoundingClientRect();
  el.setAttribute('data-box', [r.left, r.top, r.width, r.height].map(Math.round).join(','));
}
</script></body>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    if REQUIRE_BROWSER:
        pytest.fail("headless Chromium is required here (Debian package chromium)")
    pytest.skip("no Chromium (Debian package chromium)")


def _browser(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp()
    try:
        return subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1400,3000",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_html_renders_table_and_every_plot(report, tmp_path):
    from PIL import Image

    binary = _chromium()
    _, files = report
    page = tmp_path / "boxed.html"
    page.write_text(files.layout.leaderboard_html.read_text().replace("</body>", BOXES))
    dom = _browser(binary, "--dump-dom", page.as_uri()).stdout
    assert dom.count("<tr") == 9  # header + 8 runs
    boxes = re.findall(r'<(table|figure)[^>]*data-box="([\d,.-]+)"', dom)
    assert [kind for kind, _ in boxes] == ["table"] + ["figure"] * 4
    shot = tmp_path / "shot.png"
    _browser(binary, f"--screenshot={shot}", page.as_uri())
    with Image.open(shot) as image:
        image = image.convert("RGB")
        for kind, box in boxes:
            left, top, width, height = (int(v) for v in box.split(","))
            assert width > 200 and height > 100, (kind, box)
            assert top + height <= image.height, f"{kind} below the screenshot"
            region = image.crop((left, top, left + width, top + height))
            colours = region.getcolors(maxcolors=1_000_000) or []
            assert len(colours) > 20, f"{kind} at {box} looks blank"


def test_report_command(report, tmp_path):
    import sys

    from conftest import ROOT

    out, _ = report
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "batch_runner.py"),
            "report",
            "--output-dir",
            str(out),
            "--out",
            str(tmp_path / "rep"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"leaderboard: {tmp_path / 'rep' / 'leaderboard.html'}" in done.stdout
    assert (tmp_path / "rep" / "submission.zip").is_file()
    empty = subprocess.run(
        [sys.executable, str(ROOT / "batch_runner.py"), "report", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert empty.returncode == 2 and "no runs to report" in empty.stderr
