"""Argument checks shared by the functional API: PyTorch arguments minigrad does not support
are refused by name (never silently ignored); docs/pytorch.md lists them."""
from __future__ import annotations


def refuse(fn: str, **given):
    """Raise for any PyTorch argument that was passed a value other than its default.

    ``given`` maps an argument's name to ``(value, default)``; ``None`` defaults compare with
    ``is``, everything else with ``==``.
    """
    for name, (value, default) in given.items():
        same = value is default if default is None or value is None else value == default
        if not same:
            raise NotImplementedError(
                f"{fn}: minigrad does not support the PyTorch argument {name}={value!r} "
                f"(only the default {name}={default!r}); see docs/pytorch.md"
            )

