"""The sweep's heartbeat: a file in a run's results folder, touched while the sweep waits on it.

The benchmark stops itself when the file stays still for ``LIMIT_S`` seconds
(``contract.HEARTBEAT_ENV``): a sweep killed outright (SIGKILL, a closed session) cannot stop
its runs, but its runs notice that it is gone, in containers and local processes alike.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from energy_bench import contract

BEAT_S = 5.0
LIMIT_S = 60.0  # generous: a busy host may delay a beat; a gone sweep is noticed within a minute


def limit_s(env: Mapping[str, str] = os.environ) -> float:
    """``LIMIT_S``, or ``contract.HEARTBEAT_ENV`` of ``env`` when set (tests shorten it).

    ``env``: this process's environment, or the one a run was given.
    """
    try:
        limit = float(env.get(contract.HEARTBEAT_ENV) or LIMIT_S)
    except ValueError:
        return LIMIT_S
    return limit if limit > 0 else LIMIT_S


def environment() -> dict[str, str]:
    """What a run's environment gets so that the benchmark watches the heartbeat."""
    return {contract.HEARTBEAT_ENV: f"{limit_s():g}"}


@contextlib.contextmanager
def beating(results_dir: Path, limit: float | None = None) -> Iterator[None]:
    """Touch ``results_dir``'s heartbeat file every ``BEAT_S`` seconds while the block runs.

    More often when the limit is short: a beat always comes within a quarter of it. ``limit``:
    the one the run was given, where it is not this process's own (``limit_s``).
    """
    path = results_dir / contract.HEARTBEAT_FILE
    done = threading.Event()

    def touch() -> None:
        with contextlib.suppress(OSError):  # a full disk must not stop the run
            path.touch()

    interval = min(
        BEAT_S, (limit or limit_s()) / 4
    )  # several beats within the limit, however short

    def beat() -> None:
        while not done.wait(interval):
            touch()

    touch()  # there before the run starts

    thread = threading.Thread(target=beat, name=f"heartbeat {results_dir.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=BEAT_S)
        path.unlink(missing_ok=True)
