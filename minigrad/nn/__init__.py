"""minigrad.nn: Modules, Parameters and layers."""
from . import init
from .layers import BatchNorm2d, CenterCrop, Conv2d, ConvTranspose2d, Dropout, Linear, MaxPool2d, ReLU, Upsample
from .module import Module, Parameter, Sequential

__all__ = [
    "init", "Module", "Parameter", "Sequential", "Linear", "ReLU", "Dropout",
    "Conv2d", "ConvTranspose2d", "MaxPool2d", "CenterCrop", "BatchNorm2d", "Upsample",
]
