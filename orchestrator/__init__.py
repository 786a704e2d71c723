"""Host side of the AI Energy Score runner: configs, planning, runners, results, reports."""

__version__ = "0.1.0"
IMAGE_REPOSITORY = "ai_energy_score"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
