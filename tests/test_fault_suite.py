"""One test per fault of ``tools/fault_suite.py`` (nothing lost, nothing leaked, whatever fails).

Each test runs one case of the suite's registry against the CPU demo (local runner) and passes
when the product behaved as promised and nothing was lost, leaked, shown as a traceback or left
running. The baseline sweep is made once per session and copied into each case's folder; cases
that mount a tmpfs skip where mounting is not permitted.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import ROOT


def _load_suite():
    spec = importlib.util.spec_from_file_location("fault_suite", ROOT / "tools" / "fault_suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


fault_suite = _load_suite()


@pytest.fixture(scope="session")
def suite(tmp_path_factory):
    suite = fault_suite.Suite(ROOT, tmp_path_factory.mktemp("faults"))
    yield suite
    suite.close()


@pytest.mark.slow
@pytest.mark.parametrize("case", fault_suite.CASES, ids=[c.name for c in fault_suite.CASES])
def test_fault(suite, case):
    if case.mounts and not suite.can_mount():
        pytest.skip("mounting a tmpfs is not permitted here (needs root)")
    observation = case(suite)
    if observation.skipped:
        pytest.skip(observation.skipped)
    assert observation.passed, observation.report()


def test_registry():
    names = [c.name for c in fault_suite.CASES]
    assert len(names) >= 25 and len(set(names)) == len(names)
    assert all(c.expected for c in fault_suite.CASES)
