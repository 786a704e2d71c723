import sys

from energy_bench.cli import main

sys.exit(main())
