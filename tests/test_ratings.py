"""Star ratings on hand-computed fixtures."""

from __future__ import annotations

import pytest

from orchestrator.reports.ratings import best_per_group, exclusion, group_of, rate, stars_for


def row(name, wh, *, cls="A", gpu="NVIDIA H100 80GB HBM3", status="ok", source="nvml", **extra):
    return {
        "run_name": name,
        "task": "text_gen",
        "model_class": cls,
        "gpu_name": gpu,
        "status": status,
        "energy_source": source,
        "wh_per_1000_queries": wh,
        **extra,
    }


def stars(rated):
    return {r.row["run_name"]: r.stars for r in rated}


def test_five_equal_bands_lowest_gets_five():
    # range 10..60, width 10: bands (10,20] ... (50,60]; 10 and 20 are in the best band
    rated = rate(
        [
            row(n, wh)
            for n, wh in [
                ("a", 10),
                ("b", 20),
                ("c", 20.5),
                ("d", 35),
                ("e", 50),
                ("f", 50.01),
                ("g", 60),
            ]
        ]
    )
    assert stars(rated) == {"a": 5, "b": 5, "c": 4, "d": 3, "e": 2, "f": 1, "g": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, 5), (1.0, 5), (1.000001, 4), (2.0, 4), (3.0, 3), (4.0, 2), (4.5, 1), (5.0, 1)],
)
def test_band_edges_go_to_the_better_band(value, expected):
    assert stars_for(value, 0.0, 5.0) == expected


def test_float_noise_on_an_edge_still_goes_to_the_better_band():
    low, high = 0.1, 0.6
    edge = low + (high - low) / 5 * 2  # 0.30000000000000004
    assert stars_for(edge, low, high) == 4


def test_one_model_alone_gets_five_and_says_so():
    (only,) = rate([row("a", 12.3)])
    assert only.stars == 5 and "only rated run" in only.reason


def test_classes_and_gpu_models_are_rated_apart():
    rated = rate(
        [
            row("a1", 10),
            row("a2", 20),
            row("b1", 100, cls="B"),
            row("b2", 200, cls="B"),
            row("h1", 1000, gpu="NVIDIA H200"),
            row("h2", 15, gpu="NVIDIA H200"),
        ]
    )
    assert stars(rated) == {"a1": 5, "a2": 1, "b1": 5, "b2": 1, "h1": 1, "h2": 5}
    assert len({r.group for r in rated}) == 3


def test_runs_on_the_eager_and_the_compiled_path_are_rated_apart():
    rated = rate(
        [
            row("e1", 10, generation_path="eager"),
            row("e2", 20, generation_path="eager"),
            row("c1", 4, generation_path="compiled"),
            row("c2", 8, generation_path="compiled"),
        ]
    )
    # Together the eager runs would take 1 and 3 stars; apart, each path has its own range.
    assert stars(rated) == {"e1": 5, "e2": 1, "c1": 5, "c2": 1}
    assert {r.group for r in rated} == {
        "text_gen / class A / NVIDIA H100 80GB HBM3 / eager path",
        "text_gen / class A / NVIDIA H100 80GB HBM3 / compiled path",
    }


def test_failed_suspect_and_zero_rows_are_not_rated():
    rated = rate(
        [
            row("good", 10),
            row("good2", 30),
            row("failed", None, status="failed", error_message="out_of_memory: CUDA OOM"),
            row("zero", 0.0),
            row("short", 5.0, short_window="True"),
            row("reset", 5.0, counter_reset=True),
            row("mismatch", 5.0, trace_mismatch="True"),
            row("recompiled", 5.0, recompiled="True"),
        ]
    )
    by = {r.row["run_name"]: r for r in rated}
    assert by["good"].stars == 5 and by["good2"].stars == 1
    assert by["failed"].stars is None and "out_of_memory" in by["failed"].reason
    assert by["failed"].group == by["good"].group  # listed with its group, unrated
    assert by["zero"].stars is None and "zero energy" in by["zero"].reason
    assert "shorter than ten" in by["short"].reason
    assert "counter reset" in by["reset"].reason
    assert "disagree" in by["mismatch"].reason
    assert by["recompiled"].stars is None and "compiler" in by["recompiled"].reason


def test_estimates_are_rated_only_among_themselves():
    rated = rate(
        [
            row("m1", 10),
            row("m2", 20),
            row("e1", 0.1, source="estimate"),
            row("e2", 0.3, source="estimate"),
        ]
    )
    assert stars(rated) == {"m1": 5, "m2": 1, "e1": 5, "e2": 1}
    assert "estimated energy" in next(r.group for r in rated if r.row["run_name"] == "e1")


def test_image_tasks_are_not_split_by_class():
    rated = rate(
        [
            {**row("i1", 5), "task": "image_gen", "model_class": ""},
            {**row("i2", 10), "task": "image_gen", "model_class": ""},
        ]
    )
    assert {r.group for r in rated} == {"image_gen / NVIDIA H100 80GB HBM3"}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": "failed", "error_message": "timeout: 600 s"}, "run failed: timeout: 600 s"),
        ({"status": "", "error_message": ""}, "run unknown: no result"),
        ({"status": "skipped"}, "run skipped: no result"),
        ({"short_window": "True"},
         "suspect: measured window shorter than ten energy-counter updates"),
        ({"counter_reset": "1"}, "suspect: the energy counter reset during the run"),
        ({"trace_mismatch": " yes "},
         "suspect: power trace and energy counter disagree by more than 5 %"),
        ({"foreign_process": True},
         "suspect: another process used the run's GPU during a measured window"),
        ({"recompiled": "TRUE"}, "suspect: the compiler built a graph inside a measured window"),
        ({"wh_per_1000_queries": ""}, "no energy figure"),
        ({"wh_per_1000_queries": None}, "no energy figure"),
        ({"wh_per_1000_queries": "nan"}, "no energy figure"),
        ({"wh_per_1000_queries": "inf"}, "no energy figure"),
        ({"wh_per_1000_queries": -1.0}, "suspect: zero energy (a measurement that read nothing)"),
        ({"wh_per_1000_queries": "0"}, "suspect: zero energy (a measurement that read nothing)"),
        ({"short_window": "False", "recompiled": "0", "wh_per_1000_queries": "1e-6"}, ""),
    ],
)  # fmt: skip
def test_why_a_row_is_not_rated(changes, reason):
    assert exclusion({**row("r", 10.0), **changes}) == reason


def test_a_comparison_group_names_task_class_gpu_path_and_estimate():
    assert group_of(row("r", 1)) == "text_gen / class A / NVIDIA H100 80GB HBM3"
    assert group_of(
        {**row("r", 1), "generation_path": "compiled", "energy_source": "estimate"}
    ) == ("text_gen / class A / NVIDIA H100 80GB HBM3 / compiled path / estimated energy")
    assert group_of({"task": "image_gen", "model_class": "B"}) == "image_gen / unknown GPU"
    assert group_of({"task": "text_gen"}) == "text_gen / class ? / unknown GPU"
    assert group_of({}) == "? / unknown GPU"


def test_stars_at_every_band_and_outside_the_range():
    # 0..100 in bands of 20: (0, 20] 5 stars ... (80, 100] 1 star; the lowest value is 5 stars
    assert [stars_for(v, 0.0, 100.0) for v in (0, 20, 20.5, 40, 41, 60, 79, 80, 81, 100)] == [
        5, 5, 4, 4, 3, 3, 2, 2, 1, 1,
    ]  # fmt: skip
    assert stars_for(150.0, 0.0, 100.0) == 1 and stars_for(-5.0, 0.0, 100.0) == 5
    assert stars_for(7.0, 7.0, 7.0) == 5  # one value: the range is empty
    assert stars_for(7.0, 8.0, 7.0) == 5


def test_only_a_lone_run_is_told_it_is_alone():
    rated = rate([row("a", 10), row("b", 20), row("c", 5, cls="B"), row("x", None)])
    notes = {r.row["run_name"]: (r.stars, r.reason) for r in rated}
    assert notes == {
        "a": (5, ""), "b": (1, ""), "c": (5, "the only rated run in its group"),
        "x": (None, "no energy figure"),
    }  # fmt: skip
    assert rate([]) == []


def test_the_best_run_of_each_group_most_stars_then_least_energy_then_name():
    rated = rate(
        [row("b", 10), row("a", 10), row("c", 10.5), row("z", 60), row("k", 3, cls="B"),
         row("f", None, status="failed")]
    )  # fmt: skip
    best = best_per_group(rated)
    assert [(r.group, r.row["run_name"]) for r in best] == [
        ("text_gen / class A / NVIDIA H100 80GB HBM3", "a"),  # 10 Wh, before b by name
        ("text_gen / class B / NVIDIA H100 80GB HBM3", "k"),
    ]
    assert best_per_group([]) == []
    rated = rate([row("a", 10.5), row("b", 10), row("z", 60)])  # energy before name
    assert [r.row["run_name"] for r in best_per_group(rated)] == ["b"]
