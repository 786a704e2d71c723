"""The single-run command: ``python -m energy_bench --config-name text_generation [key=value ...]``.

The exit status is one of ``contract.ExitCode``; the last line on stderr of a failed run is
``contract.error_line(<Type>, <message>)``, and its report says the same.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from energy_bench import contract, lifecycle
from energy_bench.benchmark import RunData, run_benchmark
from energy_bench.config import CONFIG_DIR, BenchConfig, load_config
from energy_bench.contract import ExitCode
from energy_bench.errors import BenchConfigError, BenchmarkError
from energy_bench.results.files import (
    write_failure_report,
    write_measurement_files,
    write_report_files,
)
from energy_bench.results.report import build_report

log = logging.getLogger("energy_bench")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="energy_bench",
        description="Measure the GPU energy of one model on AI Energy Score text generation.",
    )
    parser.add_argument(
        "--config-name", default=contract.CONFIG_NAME, help="config in --config-dir"
    )
    parser.add_argument(
        "--config-dir", type=Path, default=CONFIG_DIR, help="folder of YAML configs"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path(os.environ.get(contract.RESULTS_DIR_ENV, contract.CONTAINER_RESULTS_DIR)),
        help=f"where result files are written (default ${contract.RESULTS_DIR_ENV} or "
        f"{contract.CONTAINER_RESULTS_DIR})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        contract.CHECK_FLAG,
        action="store_true",
        help="only check override sets read from stdin (a JSON array per line); load nothing",
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def _failure_report(cfg: BenchConfig | None, exc: BaseException, code: int) -> dict[str, Any]:
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "status": contract.STATUS_FAILED,
        "error": {"type": type(exc).__name__, "message": str(exc), "exit_code": code},
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": cfg.raw if cfg else None,
        "model": cfg.backend.model if cfg else None,
    }


def _provenance(data: RunData) -> dict[str, Any]:
    info = dict(data.backend.provenance())
    driver = getattr(data.source, "driver", None)
    if callable(driver):
        info.update(driver())
    info["energy_devices"] = [d.__dict__ for d in data.source.devices]
    return info


def _pin_cpus() -> list[int]:
    """Keep to the cores the sweep gave this run (``contract.CPUS_ENV``), with a thread each.

    Runs on different GPUs of one host then never share a core. Called before torch is
    imported, so its thread pools are sized by the variables set here. Threads that wait for
    each other sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``, unless set): on a 2-core
    host with another busy process, spinning threads made the tiny model's generation about 4
    times slower; sleeping ones cost about 1.4 times on idle cores (docs/BENCHMARKS.md).
    """
    text = os.environ.get(contract.CPUS_ENV, "")
    try:
        wanted = contract.parse_cpu_list(text)
        if wanted:
            os.sched_setaffinity(0, wanted)
    except (ValueError, OSError) as exc:
        raise BenchConfigError(
            f"{contract.CPUS_ENV}={text!r}: not cores of this host ({exc})"
        ) from None
    cpus = sorted(os.sched_getaffinity(0))
    if wanted:  # one thread per core the run really got
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(len(cpus))
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return cpus


def check_overrides(config_name: str, config_dir: Path, lines: Iterable[str]) -> int:
    """Print, for each override set read, why the benchmark would refuse it ("" if it would not).

    A set is a JSON array of ``key=value`` strings (for ``config_name``), or an object with the
    array in ``overrides`` and its own ``config_name``. Returns ``CONFIG_ERROR`` when any set is
    refused. Nothing is loaded: the host calls this before a sweep starts, so that a mistyped
    key stops everything instead of every run.
    """
    refused = False
    for line in lines:
        if not line.strip():
            continue
        try:
            given = json.loads(line)
            name = config_name
            if isinstance(given, dict):
                name, given = str(given.get("config_name") or config_name), given.get("overrides")
            if not isinstance(given, list) or not all(isinstance(o, str) for o in given):
                raise BenchConfigError(f"not a JSON array of strings: {line.strip()[:80]}")
            load_config(name, given, config_dir=config_dir)
            problem = ""
        except (BenchConfigError, json.JSONDecodeError) as exc:
            problem, refused = str(exc), True
        print(json.dumps({"problem": problem}), flush=True)
    return int(ExitCode.CONFIG_ERROR if refused else ExitCode.OK)


def configure_logging(verbose: bool) -> None:
    """Log the benchmark's own messages at INFO (DEBUG when verbose), libraries at WARNING.

    At INFO some libraries print after the run's final line, at exit (torch's
    fake tensor cache statistics), and the sweep reads that last line as the
    run's error.
    """
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.check_overrides:
        return check_overrides(args.config_name, args.config_dir, sys.stdin)
    lifecycle.handle_sigterm()
    lifecycle.guard_output()
    configure_logging(args.verbose)
    results = args.results_dir
    cfg: BenchConfig | None = None
    try:
        cpus = _pin_cpus()
        cfg = load_config(args.config_name, args.overrides, config_dir=args.config_dir)
        results.mkdir(parents=True, exist_ok=True)
        limit = lifecycle.heartbeat_limit()
        if limit is not None:
            lifecycle.watch_heartbeat(results, limit)
        log.info("model %s -> %s (config %s)", cfg.backend.model, results, cfg.config_hash)
        data = run_benchmark(cfg)
        data.provenance = _provenance(data) | {
            "cpus": cpus,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        }
        write_measurement_files(results, data)
        report = build_report(data)
        write_report_files(results, report)
        e, s = report["energy"], report["summary"]
        if s["budget_mismatches"]:
            log.warning(
                "%d answer(s) broke their token budget (warmup and prefill passes included; "
                "measured passes: %d-%d new tokens): the server did not hold it",
                s["budget_mismatches"], s["min_new_tokens"], s["max_new_tokens"],
            )  # fmt: skip
        done = f"done: {s['successful_prompts']}/{s['total_prompts']} prompts, "
        done += f"{e['gpu_energy_wh']:.4f} Wh ({e['energy_source']}), "
        if report["images"] is not None:
            done += f"{report['images']['images_per_second']:.3f} images/s"
        else:
            done += f"{e['tokens_per_joule'] or 0.0:.3f} tokens/J, "
            done += f"{s['throughput_tokens_per_second']:.1f} tokens/s"
        log.info("%s", done)
        return 0
    except KeyboardInterrupt as exc:
        code, error = ExitCode.INTERRUPTED, exc
    except BenchmarkError as exc:
        code, error = exc.exit_code, exc
    except Exception as exc:
        log.error("unexpected failure", exc_info=True)
        code, error = ExitCode.FAILED, exc
    if results.is_dir() or cfg is not None:
        try:
            write_failure_report(results, _failure_report(cfg, error, code))
        except OSError as exc:
            log.warning("could not write the failure report: %s", exc)
    print(contract.error_line(type(error).__name__, str(error)), file=sys.stderr)
    return int(code)
