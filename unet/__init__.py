"""unet: the U-Net of Ronneberger, Fischer & Brox (2015) built on minigrad."""
from .family import AttentionUNet, TernausNet, UNetPlusPlus
from .model import UNet

__all__ = ["UNet", "UNetPlusPlus", "AttentionUNet", "TernausNet", "weight_map", "separate_touching", "metrics"]


def __getattr__(name):  # the data-side helpers need SciPy: import them on first use
    if name in ("weight_map", "separate_touching", "class_target"):
        from . import weights

        return getattr(weights, name)
    if name in ("metrics", "data", "inference", "train"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'unet' has no attribute {name!r}")
