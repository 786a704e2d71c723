"""The AI Energy Score text-generation benchmark that runs inside the GPU container.

Self-contained: it shares nothing with the host orchestrator but its command line and the files
it writes to the results folder.
"""

__version__ = "0.1.0"
