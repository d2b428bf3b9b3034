"""Switches for optional implementations, as ``torch.backends``: ``minigrad.backends.accelerated``."""
from . import accelerated

__all__ = ["accelerated"]
