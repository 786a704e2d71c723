"""The AI Energy Score text-generation benchmark that runs inside the GPU container.

It stands alone: the host orchestrator starts it through its command line, reads the files it
writes, and imports only ``energy_bench.contract``, where the two agree on names and codes.
"""

from energy_bench.contract import VERSION as __version__

__all__ = ["__version__"]
