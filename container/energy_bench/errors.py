"""Typed errors of the benchmark, each ending the process with one exit status of the contract."""

from __future__ import annotations

from energy_bench.contract import ExitCode


class BenchmarkError(Exception):
    """Base of the benchmark's errors; ``exit_code`` is the process status it ends with."""

    exit_code = ExitCode.FAILED


class BenchConfigError(BenchmarkError):
    """A bad config name, key or value."""

    exit_code = ExitCode.CONFIG_ERROR


class ModelLoadError(BenchmarkError):
    """The model or its tokenizer exists but could not be loaded."""

    exit_code = ExitCode.MODEL_LOAD_ERROR


class GatedModel(ModelLoadError):
    """The Hub refused the download (HTTP 401/403): licence not accepted, or no token."""

    exit_code = ExitCode.GATED_MODEL


class ModelNotFound(ModelLoadError):
    """No such model on the Hub (HTTP 404), or no such local folder."""

    exit_code = ExitCode.MODEL_NOT_FOUND


class ServerUnavailable(BenchmarkError):
    """The serving backend's endpoint does not answer, or not as an OpenAI-compatible server."""

    exit_code = ExitCode.SERVER_UNAVAILABLE


class OutOfMemory(BenchmarkError):
    """The accelerator ran out of memory."""

    exit_code = ExitCode.OUT_OF_MEMORY


class BenchmarkAborted(BenchmarkError):
    """Too many prompts failed in a row to go on."""

    exit_code = ExitCode.ABORTED


class EnergyUnavailable(BenchmarkError):
    """No energy source can be read for the devices the run was given."""

    exit_code = ExitCode.NO_ENERGY_SOURCE


class Stopped(KeyboardInterrupt):
    """The run was told to stop (SIGTERM, or its sweep is gone).

    A ``KeyboardInterrupt``, so that no handler of ordinary errors (a failed prompt) takes it.
    """
