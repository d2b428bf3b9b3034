"""Weights both ways between minigrad and PyTorch (the graduation path), through .npz files.

minigrad's state dicts already use PyTorch's names and layouts for the layers minigrad has:
    nn.Linear            weight (out_features, in_features), bias (out_features,)
    nn.Conv2d            weight (C_out, C_in / groups, kh, kw), bias (C_out,)
    nn.ConvTranspose2d   weight (C_in, C_out / groups, kh, kw), bias (C_out,)
    nn.BatchNorm2d       weight, bias (C,); buffers running_mean, running_var (C,) and
                         num_batches_tracked (0-d int64)
so a minigrad model and its PyTorch twin (same module names) exchange weights unchanged: no
transposition, no renaming; only the container differs. Buffers travel like parameters (state
dicts hold both), so BatchNorm's running statistics and batch count go across in both
directions, and the twin behaves the same in train() and in eval() mode. ``torch.save`` files are pickles,
which minigrad never loads (unpickling runs arbitrary code), so the bridge is a plain .npz:
one array per parameter or buffer under its PyTorch name, plus a format marker, read with
``allow_pickle=False`` on both sides.

minigrad side (no torch needed):
    export_for_torch(model | state dict | checkpoint path, "weights.npz")
    state = import_from_torch("weights.npz"); model.load_state_dict(state)
PyTorch side (these two import torch when called; run them where torch is installed):
    torch_load_npz("weights.npz", torch_model)     # load into a torch.nn.Module, or get a dict of tensors
    torch_save_npz(torch_model, "weights.npz")      # a torch.nn.Module or its state_dict()

A U-Net checkpoint written by ``unet train`` ({"model": ..., "optim": ..., ...}) can be passed
to ``export_for_torch`` directly: its "model" entry is exported.
"""
from __future__ import annotations

import os
import zipfile
from collections import OrderedDict

import numpy as np

from . import backend
from .serialization import StateDict, atomic_write, load

BRIDGE_KEY = "__minigrad_torch_bridge__"
BRIDGE_FORMAT = "minigrad-torch-bridge-v1"


def _contiguous(array: np.ndarray) -> np.ndarray:
    """A C-contiguous array of the same shape: a 0-d value (BatchNorm2d's num_batches_tracked)
    stays 0-d (``np.ascontiguousarray`` would make it 1-d)."""
    return np.require(array, requirements="C")


def _write(arrays: dict, path) -> None:
    for name, value in arrays.items():
        if not isinstance(name, str) or name.startswith("__"):
            raise ValueError(f"bridge: parameter names must be strings not starting with '__', got {name!r}")
        if value.dtype == object:
            raise TypeError(f"bridge: '{name}' holds Python objects, not numbers")
    flat = dict(arrays)
    flat[BRIDGE_KEY] = np.array(BRIDGE_FORMAT)
    atomic_write(path, lambda f: np.savez(f, **flat))


def _read(path) -> "OrderedDict[str, np.ndarray]":
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"bridge: no such file: '{path}'")
    try:
        with np.load(path, allow_pickle=False) as npz:
            flat = OrderedDict((k, npz[k]) for k in npz.files)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise ValueError(f"bridge: '{path}' is not a readable .npz file (a torch.save pickle? those are never "
                         f"loaded; write the file with torch_save_npz): {err}") from None
    if str(flat.pop(BRIDGE_KEY, "")) != BRIDGE_FORMAT:
        # (np.load hands a zip member that is not .npy back as raw bytes: a torch.save file's
        # data.pkl is never unpickled here)
        hint = (" It looks like a torch.save pickle, which is never loaded;"
                if any(k.endswith(".pkl") or isinstance(v, bytes) for k, v in flat.items()) else "")
        raise ValueError(f"bridge: '{path}' has no '{BRIDGE_KEY}' marker.{hint} Write it with export_for_torch "
                         "(minigrad) or torch_save_npz (PyTorch)")
    return flat


# ---- minigrad side ------------------------------------------------------------------------
def export_for_torch(source, path) -> list:
    """Write a minigrad model's weights for PyTorch: ``source`` is a Module, a state dict
    (name -> array or Tensor), or the path of a file written by ``minigrad.save`` (a U-Net
    checkpoint's "model" entry is used). Returns the names written, in order."""
    if isinstance(source, (str, os.PathLike)):
        source = load(source)
        if "model" in source and isinstance(source["model"], dict):
            source = source["model"]
    state = source.state_dict() if hasattr(source, "state_dict") else source
    if not isinstance(state, dict):
        raise TypeError(f"export_for_torch: expected a Module, a state dict or a file path, got {type(source).__name__}")
    arrays = OrderedDict()
    for name, value in state.items():
        value = value.data if hasattr(value, "data") and not backend.is_array(value) else value
        if isinstance(value, dict) or not (backend.is_array(value) or isinstance(value, np.ndarray)):
            raise TypeError(f"export_for_torch: '{name}' is a {type(value).__name__}, expected an array "
                            "(pass the model or its state_dict())")
        arrays[name] = _contiguous(backend.to_numpy(value))
    _write(arrays, path)
    return list(arrays)


def import_from_torch(path) -> StateDict:
    """Read weights written by ``torch_save_npz`` as a state dict for ``Module.load_state_dict``
    (which checks every name and shape against the model)."""
    state = StateDict(_read(path))
    state.source = os.fspath(path)
    return state


# ---- PyTorch side ---------------------------------------------------------------------------
def torch_save_npz(module_or_state_dict, path) -> list:
    """PyTorch side: write a ``torch.nn.Module``'s weights (or its ``state_dict()``) as the
    bridge .npz that ``import_from_torch`` reads. Returns the names written."""
    state = module_or_state_dict.state_dict() if hasattr(module_or_state_dict, "state_dict") else module_or_state_dict
    arrays = OrderedDict()
    for name, value in state.items():
        if not hasattr(value, "detach"):
            raise TypeError(f"torch_save_npz: '{name}' is a {type(value).__name__}, expected a torch.Tensor")
        arrays[name] = _contiguous(value.detach().cpu().numpy())
    _write(arrays, path)
    return list(arrays)


def torch_load_npz(path, module=None, strict: bool = True):
    """PyTorch side: read a bridge .npz (from ``export_for_torch``). With ``module`` (a
    ``torch.nn.Module``) load it there (``load_state_dict``, ``strict`` as in PyTorch, which
    checks names and shapes) and return the module; otherwise return an OrderedDict of tensors."""
    import torch

    state = OrderedDict((name, torch.from_numpy(array.copy())) for name, array in _read(path).items())
    if module is None:
        return state
    module.load_state_dict(state, strict=strict)
    return module
