"""Resolve a CSV Reasoning State into an explicit directive for the model's family.

The families and their mechanisms are data: ``reasoning_formats.yaml`` beside this module, read
after any file the user gives (``--reasoning-formats``). The CSV's state is authoritative; where
a family cannot honour it (a model with one mode only), the run happens in the mode the model has
and the directive says so (``mismatch``), and where it has no mechanism at all, ``control`` is
``model_default`` or the container reports ``none``: nothing is run as something else silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_args

import yaml

from energy_bench.contract import CONTROLS, control_writes
from orchestrator.errors import ConfigError
from orchestrator.models.config import Effort, ReasoningDirective, ReasoningState, Task

SHIPPED_FORMATS = Path(__file__).with_name("reasoning_formats.yaml")
EFFORTS: tuple[str, ...] = get_args(Effort)
_RULE_KEYS = {"control", "effort", "runs", "note"}
_FAMILY_KEYS = {"name", "patterns", "on", "off"}
_RUNS = {"on": True, "off": False, True: True, False: False}
_YAML_KEYS = {True: "on", False: "off"}


@dataclass(frozen=True)
class Rule:
    """How a family applies one state: a mechanism, and the mode the model really runs in."""

    control: str
    effort: Effort | None = None
    runs: bool | None = None  # None: the state asked for; else the model's only mode
    note: str = ""


@dataclass(frozen=True)
class Family:
    """A model family: the id patterns that identify it and its rules for on and off."""

    name: str
    patterns: tuple[re.Pattern[str], ...]
    on: Rule
    off: Rule

    def matches(self, model_id: str) -> bool:
        """True when one of the patterns is found in the id (ignoring case)."""
        return any(p.search(model_id) for p in self.patterns)


@dataclass(frozen=True)
class ReasoningFormats:
    """The families, in the order they are tried."""

    families: tuple[Family, ...]

    def family_of(self, model_id: str) -> Family:
        """The first family whose patterns match ``model_id``."""
        for family in self.families:
            if family.matches(model_id):
                return family
        raise LookupError(f"no reasoning family matches {model_id!r}")  # the default matches all

    def resolve(self, model_id: str, state: ReasoningState, task: Task) -> ReasoningDirective:
        """The reasoning directive for one CSV row."""
        asked = state.enabled
        if task is not Task.TEXT_GEN or asked is None:
            return NOT_APPLICABLE
        family = self.family_of(model_id)
        rule = family.on if asked else family.off
        runs = asked if rule.runs is None else rule.runs
        effort = None
        if rule.control == "harmony":
            effort = (state.effort or rule.effort or "high") if asked else (rule.effort or "low")
        notes = [rule.note]
        if state.effort and rule.control != "harmony":
            notes.append(f"this family has no effort levels: '{state.effort}' is not applied")
        mismatch = ""
        if runs != asked:
            mode = "reasoning" if runs else "without reasoning"
            mismatch = f"the CSV asks {state.value}, but the model runs only {mode}"
            mismatch += f": {rule.note}" if rule.note else ""
        return _directive(rule.control, runs, effort, "; ".join(n for n in notes if n), mismatch)


def _directive(
    control: str, on: bool, effort: Effort | None, note: str, mismatch: str
) -> ReasoningDirective:
    """The directive that writes ``control``'s strings for the mode ``on``."""
    kwargs, system, prefix, assistant = control_writes(control, on, effort)
    return ReasoningDirective(
        enabled=on,
        control=control,  # type: ignore[arg-type]  # checked against CONTROLS when read
        effort=effort,
        chat_template_kwargs=kwargs,
        system_prompt=system,
        prompt_prefix=prefix,
        assistant_prefix=assistant,
        note=note,
        mismatch=mismatch,
    )


NOT_APPLICABLE = ReasoningDirective(enabled=None, control="none", note="no reasoning for this task")


def _listed(keys: Any) -> str:
    return ", ".join(sorted(map(str, keys)))


def _rule(path: Path, where: str, data: Any) -> Rule:
    if isinstance(data, str):
        data = {"control": data}
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"{where}: expected a mapping with 'control'", value=str(data))
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise ConfigError(
            path, f"{where}: unknown key(s) {_listed(unknown)}; expected {_listed(_RULE_KEYS)}"
        )
    control = data.get("control")
    if control not in CONTROLS or control == "none":
        valid = ", ".join(c for c in CONTROLS if c != "none")
        raise ConfigError(path, f"{where}: control must be one of {valid}", value=str(control))
    effort = data.get("effort")
    if effort is not None and (control != "harmony" or effort not in EFFORTS):
        raise ConfigError(
            path, f"{where}: effort is for control harmony, one of {', '.join(EFFORTS)}",
            value=str(effort),
        )  # fmt: skip
    runs = data.get("runs")
    if runs is not None and runs not in _RUNS:
        raise ConfigError(path, f"{where}: runs must be on or off", value=str(runs))
    note = data.get("note", "")
    if not isinstance(note, str):
        raise ConfigError(path, f"{where}: note must be text", value=str(note))
    return Rule(control, effort, None if runs is None else _RUNS[runs], note.strip())


def _family(path: Path, index: int, data: Any) -> Family:
    where = f"families[{index}]"
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"{where}: expected a mapping", value=str(data))
    # YAML 1.1 reads a bare on / off key as a boolean.
    data = {_YAML_KEYS.get(k, k) if isinstance(k, bool) else k: v for k, v in data.items()}
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(path, f"{where}: every family needs a name")
    where = f"family {name!r}"
    unknown = set(data) - _FAMILY_KEYS
    if unknown:
        raise ConfigError(
            path, f"{where}: unknown key(s) {_listed(unknown)}; expected {_listed(_FAMILY_KEYS)}"
        )
    patterns = data.get("patterns")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not patterns:
        raise ConfigError(path, f"{where}: patterns must be a list of regular expressions")
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(str(pattern), re.IGNORECASE))
        except re.error as exc:
            raise ConfigError(path, f"{where}: bad pattern ({exc})", value=str(pattern)) from None
    for state in ("on", "off"):
        if state not in data:
            raise ConfigError(path, f"{where}: missing '{state}'")
    return Family(
        name=name.strip(),
        patterns=tuple(compiled),
        on=_rule(path, f"{where}, on", data["on"]),
        off=_rule(path, f"{where}, off", data["off"]),
    )


def read_formats(path: Path) -> tuple[Family, ...]:
    """The families of one reasoning-formats file; a ``ConfigError`` names what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read the file: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(path, f"not YAML: {getattr(exc, 'problem', exc)}", line=line) from None
    families = data.get("families") if isinstance(data, Mapping) else None
    if not isinstance(families, list) or not families:
        raise ConfigError(path, "expected a top-level 'families:' list")
    return tuple(_family(path, i, f) for i, f in enumerate(families))


@cache
def _shipped() -> tuple[Family, ...]:
    return read_formats(SHIPPED_FORMATS)


def load_formats(extra: Sequence[Path] = ()) -> ReasoningFormats:
    """The user's families (``extra``, in order) before the shipped ones."""
    user = tuple(f for path in extra for f in read_formats(Path(path)))
    return ReasoningFormats(user + _shipped())


def resolve_directive(
    model_id: str,
    state: ReasoningState,
    task: Task,
    formats: ReasoningFormats | None = None,
) -> ReasoningDirective:
    """The reasoning directive for one CSV row (the shipped formats unless others are given)."""
    return (formats or load_formats()).resolve(model_id, state, task)
