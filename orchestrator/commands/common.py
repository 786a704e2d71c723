"""What the sweep and the single-run command share.

Their options, the Hugging Face cache they mount, and the warning about a missing token.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from energy_bench import contract
from orchestrator import DEFAULT_IMAGE
from orchestrator.errors import RunnerError
from orchestrator.planning.identity import split_override
from orchestrator.planning.plan import RunPlan, Serving
from orchestrator.store.paths import DEFAULT_OUTPUT_DIR

log = logging.getLogger(__name__)
SERVER_KEY_ENV = "VLLM_API_KEY"  # the server's API key, passed to the runs in their environment
TOKEN_WARNING_NAMES = 5  # models the warning about a missing token names before a count


def add_formats_option(parser: argparse.ArgumentParser) -> None:
    """``--reasoning-formats FILE`` (repeatable): families tried before the shipped ones."""
    parser.add_argument(
        "--reasoning-formats",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="YAML of reasoning families, tried before the shipped "
        "orchestrator/models/reasoning_formats.yaml (repeatable)",
    )


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options of both the sweep and ``run``."""
    add_formats_option(parser)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(DEFAULT_OUTPUT_DIR),
        help=f"where results, logs and the master CSV go (./{DEFAULT_OUTPUT_DIR})",
    )
    parser.add_argument(
        "--runner",
        choices=("auto", "docker", "local"),
        default="auto",
        help="docker, local subprocess, or auto (docker when it can run)",
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"benchmark image ({DEFAULT_IMAGE})")
    parser.add_argument(
        "-n",
        "--num-prompts",
        type=int,
        default=None,
        help=f"prompts per run (default {contract.DEFAULT_NUM_SAMPLES}; a run on the bundled set, "
        f"the fallback when the Hub dataset cannot be read, sends all "
        f"{contract.bundled_prompt_count()}; {contract.bundled_prompt_count(image=True)} "
        "for an image run)",
    )
    parser.add_argument(
        "--prompts-file",
        type=Path,
        default=None,
        help="a local .csv/.jsonl/.txt prompt file instead of the Hub dataset",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a run after this long (default: a bound from its class, prompts and token "
        "budget; see the README)",
    )
    parser.add_argument(
        "--gpus",
        default=None,
        help="GPUs to use: indices or UUIDs, comma-separated (--backend vllm: the server's GPUs "
        "to measure; default all of this host's)",
    )
    parser.add_argument(
        "--backend",
        choices=("pytorch", "vllm"),
        default="pytorch",
        help="pytorch: the model runs in the benchmark; vllm: prompts go to an OpenAI-compatible "
        "server at --endpoint (vLLM, transformers serve) and its GPUs are measured",
    )
    parser.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help="the server's base URL with --backend vllm, as http://127.0.0.1:8000/v1 "
        f"(a key goes in {SERVER_KEY_ENV}, never in the URL)",
    )
    parser.add_argument(
        "--hf-cache",
        type=Path,
        default=None,
        help="Hugging Face cache mounted into containers (default: the Hub's)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and the summary only")


def warn_without_token(plans: Sequence[RunPlan], token_found: bool) -> None:
    """Gated models fail with 401/403 without a token: say so, in one line, before they run.

    ``plans`` are the runs that will run (not skipped, not complete). Any model from the Hub may
    be gated, and only the Hub knows which, so each of theirs is named (the first few, then a
    count); a local folder needs no token.
    """
    hub = list(
        dict.fromkeys(p.config.model_id for p in plans if not Path(p.config.model_id).is_absolute())
    )
    if not hub or token_found:
        return
    named = ", ".join(hub[:TOKEN_WARNING_NAMES])
    more = len(hub) - TOKEN_WARNING_NAMES
    log.warning(
        "no Hugging Face token (HF_TOKEN, .env or the Hub's token file): gated models fail with "
        "401/403; %d Hub model%s to run: %s%s",
        len(hub),
        "s" if len(hub) > 1 else "",
        named,
        f" and {more} more" if more > 0 else "",
    )


def prompts_file(args: argparse.Namespace) -> Path | None:
    """``--prompts-file`` as an absolute path, checked before anything runs."""
    if args.prompts_file is None:
        return None
    path = args.prompts_file.resolve()
    if not path.is_file():
        raise RunnerError(f"--prompts-file {args.prompts_file}: no such file")
    return path


def check_common(args: argparse.Namespace) -> None:
    """The common options' values that cannot work stop everything before it starts."""
    if args.num_prompts is not None and args.num_prompts < 1:
        raise RunnerError(f"-n {args.num_prompts}: at least one prompt")
    if args.timeout is not None and not args.timeout > 0:
        raise RunnerError(f"--timeout {args.timeout:g}: must be more than 0 seconds")


def check_serving(args: argparse.Namespace) -> None:
    """``--backend`` and ``--endpoint`` agree, and the URL is one a run can use and show.

    The flags set the backend's keys: as overrides, an endpoint would bypass these checks (and
    reach every record), and a type would disagree with the flag (the AI Energy Score runner
    sends ``backend.type=pytorch``, which agrees).
    """
    for item in args.overrides:
        key, value = split_override(item)
        if key == "backend.endpoint":
            raise RunnerError(f"{key}: give --endpoint URL (it is checked before any run)")
        if key == "backend.type" and value != args.backend:
            raise RunnerError(f"{key}={value} disagrees with --backend {args.backend}")
    if args.backend != "vllm":
        if args.endpoint:
            raise RunnerError(f"--endpoint {args.endpoint}: only with --backend vllm")
        return
    url = args.endpoint or ""
    if not url.startswith(("http://", "https://")):
        raise RunnerError(
            f"--backend vllm needs --endpoint URL, the server's base URL as "
            f"http://127.0.0.1:8000/v1 (got {url or 'none'!r})"
        )
    parts = urlsplit(url)
    if parts.username or parts.password or parts.query:
        raise RunnerError(
            f"--endpoint: no user, password or query in the URL (it is written into every "
            f"result); put a key in {SERVER_KEY_ENV}"
        )
    if not parts.hostname:
        raise RunnerError(f"--endpoint {url}: no host")


def serving(args: argparse.Namespace, gpu_uuids: Sequence[str]) -> Serving | None:
    """The server the runs measure (``--backend vllm``), its GPUs those given here; else None."""
    if args.backend != "vllm":
        return None
    return Serving(args.endpoint.rstrip("/"), tuple(gpu_uuids))
