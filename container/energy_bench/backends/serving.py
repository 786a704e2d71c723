"""The serving backend: every prompt a streamed chat completion to an OpenAI-compatible server.

vLLM (``vllm serve``), ``transformers serve`` or any server of that API. The model runs in the
server; this backend sends the prompts, ``scenario.concurrency`` in flight at a time (as one ends
the next starts), and the meter reads
the server's GPUs (``backend.server_gpus``) with the same windows as a local run.

Token budgets: ``max_tokens`` bounds every answer; ``min_tokens`` and ``ignore_eos`` (vLLM's
request fields) make a min = max budget exact. A server that refuses them (``transformers serve``
answers 422) is asked again without them, once for the run, and said so in the provenance. Counts
come from the usage the stream ends with (``stream_options.include_usage``); every answer whose
count breaks the budget is counted in ``budget_mismatches``, so a server that ignores
``min_tokens`` cannot pass for one that honoured it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from energy_bench.backends.base import Batch, Generation
from energy_bench.config import BackendConfig, ScenarioConfig
from energy_bench.contract import GENERATION_SERVED, control_writes
from energy_bench.energy import nvml
from energy_bench.errors import (
    BenchConfigError,
    BenchmarkAborted,
    EnergyUnavailable,
    ModelNotFound,
    ServerUnavailable,
)
from energy_bench.workload import rendering
from energy_bench.workload.rendering import AppliedReasoning

log = logging.getLogger(__name__)

API_KEY_ENV = "VLLM_API_KEY"  # read from the environment only, never from the command line
BUDGET_FIELDS = ("min_tokens", "ignore_eos")  # vLLM's; other servers may refuse them
CONNECT_TIMEOUT_S = 10.0
MAX_FAILED_IN_A_ROW = 3  # requests, as the PyTorch backend's batches
# Finish reasons: an answer that ended as asked, and one the server gave up on (vLLM). Others
# (another server's names for a stop, as eos_token) count as answers, with a warning once.
FINISHED = ("stop", "length")
GAVE_UP = ("abort", "error")


def public_url(url: str) -> str:
    """``url`` without user, password, query or fragment: what messages and results show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


@dataclass(frozen=True)
class Answer:
    """One request's outcome."""

    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    ttft_s: float | None
    error: str = ""
    sent: bool = True


def _openai() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise BenchConfigError(
            "backend.type=vllm needs the openai package: pip install openai"
        ) from exc
    return openai


def applied_reasoning(scenario: ScenarioConfig) -> AppliedReasoning:
    """The directive as the request carries it: template arguments, effort, system or prefix.

    The server renders the prompt with its own chat template, which is not seen here: whether
    the template reads the arguments is the server's (the note says so).
    """
    r = scenario.reasoning
    kwargs, system, prefix, assistant = control_writes(r.control, r.enabled, r.effort)
    notes = []
    if kwargs:
        notes.append("chat_template_kwargs sent to the server; its template was not checked")
    if assistant:
        notes.append(f"the assistant prefix {assistant!r} cannot be sent to a server: not applied")
    if r.enabled is not None and r.control == "none":
        notes.append(f"scenario.reasoning={r.enabled} without a control: nothing was applied")
    return AppliedReasoning(
        enabled=r.enabled,
        requested_control=r.control,
        applied_control="none" if assistant and not (kwargs or system or prefix) else r.control,
        effort=r.effort,
        uses_chat_template=True,
        template_kwargs=dict(kwargs),
        system_prompt=system,
        prompt_prefix=prefix,
        assistant_prefix=None,
        note="; ".join(notes),
    )


class ServingBackend:
    """Prompts as streamed chat completions to ``backend.endpoint``."""

    generation_path = GENERATION_SERVED
    truncated_prompts = 0  # the server cuts or refuses; nothing is cut here
    budget_mismatches: int

    def __init__(self, backend: BackendConfig, scenario: ScenarioConfig) -> None:
        openai = _openai()
        self._errors = openai
        self.cfg = backend
        self.scenario = scenario
        self.url = public_url(backend.endpoint)
        self.served_model = backend.model
        self.applied_reasoning: AppliedReasoning | None = applied_reasoning(scenario)
        self.device_uuids = server_gpu_uuids(backend.server_gpus)
        self.parameters = local_parameters(backend.model)
        self.budget_fields_taken: bool | None = None  # None: not asked yet
        self.budget_mismatches = 0
        self.usage_missing = 0
        self.served: list[str] = []
        self._seed = scenario.seed
        self._lock = threading.Lock()
        self._failed_in_a_row = 0
        self._aborting = threading.Event()
        self._other_finishes: set[str] = set()
        self.client = openai.OpenAI(
            base_url=backend.endpoint.rstrip("/"),
            api_key=_api_key(),
            timeout=openai.Timeout(backend.request_timeout_s, connect=CONNECT_TIMEOUT_S),
            max_retries=0,  # a failed request is a failed prompt, counted; never resent quietly
        )
        self._pool = ThreadPoolExecutor(scenario.concurrency, thread_name_prefix="request")

    # --- load: the server answers and serves the model -----------------------------------------

    def load(self) -> None:
        try:
            models = self.client.models.list()
        except self._errors.APIConnectionError as exc:
            raise ServerUnavailable(f"{self.url} does not answer: {_reason(exc)}") from exc
        except self._errors.AuthenticationError as exc:
            raise _refused_key(self.url, exc) from exc
        except self._errors.APIStatusError as exc:  # the model is asked for by name then
            log.warning("%s/models answered HTTP %d; asking for the model by name",
                        self.url, exc.status_code)  # fmt: skip
            models = None
        self.served = [m.id for m in models.data] if models is not None else []
        if self.served_model not in self.served:  # or the server loads models when asked
            self._ask_once()
        log.info("%s serves %s; %d request(s) at a time", self.url, self.served_model,
                 self.scenario.concurrency)  # fmt: skip

    def _ask_once(self) -> None:
        """One token asked of a model the server does not list: it serves it, or says no.

        A 404 means no such model, or no chat completions at this URL (not an OpenAI base URL).
        """
        try:
            self.client.chat.completions.create(
                model=self.served_model,
                messages=[{"role": "user", "content": "Hello"}],
                max_tokens=1,
            )
        except self._errors.AuthenticationError as exc:
            raise _refused_key(self.url, exc) from exc
        except self._errors.APIStatusError as exc:
            listed = ", ".join(self.served) or "none"
            if exc.status_code == 404:
                raise ModelNotFound(
                    f"{self.url} does not serve {self.served_model!r} (it lists: {listed}; a "
                    "base URL ends in /v1)"
                ) from exc
            raise ServerUnavailable(
                f"{self.url} answered HTTP {exc.status_code} for {self.served_model!r} (it "
                f"lists: {listed}): {_reason(exc)}"
            ) from exc
        except self._errors.APIConnectionError as exc:
            raise ServerUnavailable(f"{self.url} does not answer: {_reason(exc)}") from exc

    def synchronize(self) -> None:
        """Every request has ended when ``generate`` returns: nothing is in flight."""

    def seed(self, seed: int) -> None:
        self._seed = seed

    def compile(self, batches: Sequence[Batch]) -> None:
        """The server compiles what it compiles; nothing here."""

    def graphs_built(self) -> int:
        return 0

    # --- prompts ------------------------------------------------------------------------------

    def prepare(self, prompts: Sequence[str]) -> list[Batch]:
        """One batch of every prompt's chat messages: a pass is one steady load on the server."""
        applied = self.applied_reasoning
        assert applied is not None
        return [
            Batch(
                indices=tuple(range(len(prompts))),
                inputs=[rendering.messages(p, applied) for p in prompts],
                prompt_tokens=(0,) * len(prompts),
            )
        ]

    def generate(self, batch: Batch, max_new_tokens: int | None = None) -> Generation:
        """Every request of ``batch``, ``scenario.concurrency`` in flight at a time.

        As one request ends the next starts (a sliding window), as users load a server. After
        ``MAX_FAILED_IN_A_ROW`` requests in a row failed, no further one is sent and the pass
        ends ``BenchmarkAborted`` (a server gone mid-run is not asked a thousand times more).
        """
        budget = max_new_tokens or self.scenario.max_new_tokens
        least = min(self.scenario.min_new_tokens, budget) if max_new_tokens is None else budget
        self._failed_in_a_row = 0
        self._aborting.clear()
        start = time.perf_counter()
        answers = list(self._pool.map(lambda m: self._ask(m, budget, least), batch.inputs))
        latency = time.perf_counter() - start
        if self._aborting.is_set():
            last = next(a.error for a in reversed(answers) if a.error and a.sent)
            raise BenchmarkAborted(f"{MAX_FAILED_IN_A_ROW} requests in a row failed; last: {last}")
        first = [a.ttft_s for a in answers if a.ttft_s is not None]
        return Generation(
            prompt_tokens=tuple(a.prompt_tokens for a in answers),
            completion_tokens=tuple(a.completion_tokens for a in answers),
            latency_s=latency,
            ttft_s=min(first) if first else None,
            latencies_s=tuple(a.latency_s for a in answers),
            ttfts_s=tuple(a.ttft_s for a in answers),
            errors=tuple(a.error for a in answers),
        )

    def _body(self, messages: list[dict[str, str]], budget: int, least: int) -> dict[str, Any]:
        applied = self.applied_reasoning
        assert applied is not None
        kwargs = dict(self.scenario.generate_kwargs)
        body: dict[str, Any] = {
            "model": self.served_model,
            "messages": messages,
            "max_tokens": budget,
            "stream": True,
            "stream_options": {"include_usage": True},
            "seed": self._seed,
        }
        if kwargs.get("do_sample"):
            body.update({k: kwargs[k] for k in ("temperature", "top_p") if k in kwargs})
        else:
            body["temperature"] = 0.0  # greedy, as the PyTorch backend's do_sample=False
        extra: dict[str, Any] = {}
        if self.budget_fields_taken is not False and least:
            extra["min_tokens"] = least
            if least >= budget:
                extra["ignore_eos"] = True
        if applied.template_kwargs:
            extra["chat_template_kwargs"] = applied.template_kwargs
        if applied.effort and applied.applied_control == "harmony":
            body["reasoning_effort"] = applied.effort
        return {**body, "extra_body": extra} if extra else body

    def _ask(self, messages: list[dict[str, str]], budget: int, least: int) -> Answer:
        if self._aborting.is_set():
            return Answer(0, 0, 0.0, None, "not sent: the pass was aborted", sent=False)
        start = time.perf_counter()
        try:
            body = self._body(messages, budget, least)
            try:
                answer = self._stream(body, budget, least, start)
            except self._errors.APIStatusError as exc:
                if not self._refused_budget_fields(exc, body):
                    raise
                body = self._body(messages, budget, least)  # once more, without them
                start = time.perf_counter()  # the refused round trip is not this answer's
                answer = self._stream(body, budget, least, start)
        except self._errors.APIStatusError as exc:
            answer = self._failed(start, f"HTTP {exc.status_code} from {self.url}: {_reason(exc)}")
        except self._errors.APIError as exc:  # down, refused, or the stream cut mid-way
            answer = self._failed(start, f"{self.url}: {_reason(exc)}")
        with self._lock:
            self._failed_in_a_row = self._failed_in_a_row + 1 if answer.error else 0
            if self._failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                self._aborting.set()
        return answer

    def _note_finish(self, reason: str) -> None:
        with self._lock:
            if reason in self._other_finishes:
                return
            self._other_finishes.add(reason)
        log.warning("%s ended an answer with finish reason %r: counted as answered",
                    self.url, reason)  # fmt: skip

    def _failed(self, start: float, message: str) -> Answer:
        log.warning("request failed: %s", message)
        return Answer(0, 0, time.perf_counter() - start, None, message)

    def _refused_budget_fields(self, exc: Any, body: dict[str, Any]) -> bool:
        """Whether the server refused vLLM's budget fields; then they are not sent again.

        Only a request that sent them, answered 400 or 422 naming one of them, counts.
        """
        sent = [f for f in BUDGET_FIELDS if f in body.get("extra_body", {})]
        text = str(getattr(exc, "body", "") or exc)
        if exc.status_code not in (400, 422) or not any(f in text for f in sent):
            return False
        if self.budget_fields_taken:  # it took them before: this error is about something else
            return False
        with self._lock:
            if self.budget_fields_taken is not False:
                log.warning(
                    "%s refused %s (HTTP %d): budgets are max_tokens only, and every answer's "
                    "count is checked against the budget",
                    self.url,
                    " and ".join(BUDGET_FIELDS),
                    exc.status_code,
                )
            self.budget_fields_taken = False
        return True

    def _stream(self, body: dict[str, Any], budget: int, least: int, start: float) -> Answer:
        sent_fields = "min_tokens" in body.get("extra_body", {})
        ttft = None
        usage = None
        pieces = 0
        ended = None
        for chunk in self.client.chat.completions.create(**body):
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                ended = choice.finish_reason or ended
                delta = choice.delta
                text = delta.content or _reasoning_text(delta)
                if text:
                    pieces += 1
                    if ttft is None:
                        ttft = time.perf_counter() - start
        latency = time.perf_counter() - start
        if ended is None:  # a connection closed early can look like the end of the stream
            return self._failed(start, f"{self.url}: the stream ended before the answer did")
        if ended in GAVE_UP:
            return self._failed(start, f"{self.url}: the server ended the answer: {ended}")
        if ended not in FINISHED:
            self._note_finish(ended)
        if sent_fields and self.budget_fields_taken is None:
            self.budget_fields_taken = True
        if usage is None:  # the server does not say: chunks stand in for tokens
            with self._lock:
                self.usage_missing += 1
            prompt, completion = 0, pieces
        else:
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
        if completion > budget or completion < least:
            with self._lock:
                self.budget_mismatches += 1
        return Answer(prompt, completion, latency, ttft)

    def provenance(self) -> dict[str, Any]:
        import openai

        return {
            "backend": "vllm",
            "endpoint": self.url,
            "served_model": self.served_model,
            "served_models": self.served,
            "concurrency": self.scenario.concurrency,
            "budget_fields_taken": self.budget_fields_taken,
            "budget_mismatches": self.budget_mismatches,
            "usage_missing": self.usage_missing,
            "openai_version": openai.__version__,
            "server_gpus": self.device_uuids,
            "parameters": self.parameters,
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def _reasoning_text(delta: Any) -> str:
    """A reasoning delta's text: vLLM sends ``reasoning_content`` (older) or ``reasoning``."""
    extra = getattr(delta, "model_extra", None) or {}
    return str(extra.get("reasoning_content") or extra.get("reasoning") or "")


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong: the server's own words for an HTTP error."""
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    text = str(cause) if cause is not None and str(cause) else str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    return _CREDENTIALS.sub("", first)


def _refused_key(url: str, exc: Any) -> BenchConfigError:
    """A 401 from the server: its key is missing or wrong (not worth a retry)."""
    given = "wrong" if os.environ.get(API_KEY_ENV) else "missing"
    return BenchConfigError(
        f"{url} refused the request (HTTP {exc.status_code}): its API key is {given}; it goes "
        f"in {API_KEY_ENV}"
    )


def _api_key() -> str:
    return os.environ.get(API_KEY_ENV) or "none"


def server_gpu_uuids(wanted: Sequence[str] | None) -> list[str]:
    """UUIDs of the server's GPUs: those named (index or UUID), else every visible one.

    Without NVML (no NVIDIA driver here), none: energy falls back as for a run without GPUs.
    """
    try:
        known = nvml.visible_uuids()
    except EnergyUnavailable as exc:
        if wanted:
            raise BenchConfigError(f"backend.server_gpus={','.join(wanted)}: {exc}") from exc
        return []
    if not wanted:
        return known
    uuids = []
    for item in wanted:
        uuid = nvml.normalise_uuid(item) if not item.isdigit() else None
        if uuid is None and int(item) < len(known):
            uuid = known[int(item)]
        if uuid not in known:
            raise BenchConfigError(
                f"backend.server_gpus: GPU {item} is not one of the {len(known)} visible here"
            )
        uuids.append(uuid)
    return uuids


def local_parameters(model: str) -> int:
    """The served model's parameter count where its folder is readable here (else 0).

    Only the labelled estimate (no GPU counter) uses it; the model is built on the meta device.
    """
    if not (Path(model) / "config.json").is_file():
        return 0
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        with torch.device("meta"):
            built = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model))
        return sum(p.numel() for p in built.parameters())
    except Exception as exc:  # an estimate's size, never a reason to fail
        log.info("could not count the parameters of %s: %s", model, exc)
        return 0
