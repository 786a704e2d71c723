"""Typed errors of the benchmark, each mapped to one process exit status."""

from __future__ import annotations


class BenchmarkError(Exception):
    """Base of the benchmark's errors; ``exit_code`` is the process status it ends with."""

    exit_code = 1


class BenchConfigError(BenchmarkError):
    """A bad config name, key or value."""

    exit_code = 2


class ModelLoadError(BenchmarkError):
    """The model or its tokenizer could not be loaded (missing, gated, unreadable)."""

    exit_code = 3


class OutOfMemory(BenchmarkError):
    """The accelerator ran out of memory."""

    exit_code = 4


class BenchmarkAborted(BenchmarkError):
    """Too many prompts failed in a row to go on."""

    exit_code = 5


class EnergyUnavailable(BenchmarkError):
    """No energy source can be read for the devices the run was given."""

    exit_code = 6
