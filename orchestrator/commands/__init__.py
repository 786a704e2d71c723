"""The command line of ``batch_runner.py``: a sweep, or one of its subcommands."""

COMMANDS = {
    "run": "one model, one run (a debug run), into the same folders as a sweep",
    "report": "ratings, leaderboard, labels and submission archive of an output folder",
    "build-image": "build the benchmark image (container/Dockerfile)",
}
"""Each subcommand, with the line the top-level help gives it."""
