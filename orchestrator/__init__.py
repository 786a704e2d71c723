"""Host side of the AI Energy Score runner: from the models CSV to runs, results and reports.

Subpackages, one per stage: ``models`` (the CSV as typed configs), ``planning`` (run plans and
their identity), ``execution`` (runners, the sweep scheduler, GPUs), ``store`` (every path and
file of an output folder), ``reports`` (ratings, leaderboard, labels, archive) and ``commands``
(the command lines). Of the benchmark package it imports ``energy_bench.contract`` alone.
"""

from energy_bench.contract import DEFAULT_IMAGE, IMAGE_REPOSITORY, VERSION

__version__ = VERSION
__all__ = ["DEFAULT_IMAGE", "IMAGE_REPOSITORY", "__version__"]
