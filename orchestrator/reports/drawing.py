r"""Text on its way to matplotlib, made plain.

matplotlib reads text between two ``$`` as a formula (mathtext); a run or model name such as
``org/$\undefinedcmd{x}$`` would make the whole figure fail to draw. Every text that comes from
a run goes through ``plain`` on its way to matplotlib.
"""

from __future__ import annotations


def plain(value: object) -> str:
    """``value`` as text that matplotlib draws as written (no formula, ever)."""
    return str(value).replace("$", r"\$")
