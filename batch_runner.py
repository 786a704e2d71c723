"""AI Energy Score runner: sweeps over the models CSV, single debug runs, image builds.

python batch_runner.py --help
python batch_runner.py run --help
python batch_runner.py build-image --help
"""

import sys

from orchestrator.commands.cli import main

if __name__ == "__main__":
    sys.exit(main())
