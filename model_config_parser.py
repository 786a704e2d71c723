"""ModelConfigParser: the models CSV as typed configs, and a command that lists them.

    from model_config_parser import ModelConfigParser
    parser = ModelConfigParser("models.csv")
    configs = parser.parse()
    filtered = parser.filter_configs(configs, model_name="gpt-oss")

Run ``python model_config_parser.py --help`` for the listing command.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.models.config import (
    ModelClass,
    ModelConfig,
    ReasoningDirective,
    ReasoningState,
    Task,
    TokenBudgets,
)
from orchestrator.models.csv_reader import read_models_csv
from orchestrator.models.filters import filter_configs
from orchestrator.models.reasoning import load_formats

__all__ = [
    "CsvNotFound",
    "ModelClass",
    "ModelConfig",
    "ModelConfigParser",
    "ReasoningDirective",
    "ReasoningState",
    "Task",
    "TokenBudgets",
]


class CsvNotFound(ConfigError, FileNotFoundError):
    """The models CSV does not exist (a ``FileNotFoundError``, as the AI Energy Score parser's)."""


class ModelConfigParser:
    """Reads one models CSV; ``parse`` validates the whole file before returning anything.

    A missing file is refused here, at construction, as the AI Energy Score parser does.
    ``reasoning_formats`` are files of reasoning families tried before the shipped ones.
    """

    def __init__(
        self,
        csv_path: str | Path = "models.csv",
        budgets: TokenBudgets | None = None,
        reasoning_formats: Sequence[str | Path] = (),
    ):
        self.csv_path = Path(csv_path)
        if not self.csv_path.is_file():
            what = "a folder, not a CSV file" if self.csv_path.is_dir() else "file not found"
            raise CsvNotFound(self.csv_path, what)
        self.budgets = budgets or TokenBudgets()
        self.formats = load_formats([Path(f) for f in reasoning_formats])

    def parse(self) -> list[ModelConfig]:
        """Every row as a ``ModelConfig``; raises ``orchestrator.errors.ConfigError`` if bad."""
        return read_models_csv(self.csv_path, self.budgets, self.formats)

    @staticmethod
    def filter_configs(
        configs: Iterable[ModelConfig],
        model_name: str | None = None,
        model_class: str | None = None,
        task: str | None = None,
        reasoning_state: str | None = None,
    ) -> list[ModelConfig]:
        """The configs passing every given filter; see ``orchestrator.models.filters``.

        The positional order (name, class, task, reasoning state) is the AI Energy Score parser's.
        """
        return filter_configs(
            configs,
            model_name=model_name,
            model_class=model_class,
            reasoning_state=reasoning_state,
            task=task,
        )


if __name__ == "__main__":
    from orchestrator.commands.list_models import main

    sys.exit(main())
