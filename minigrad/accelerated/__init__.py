"""minigrad's accelerated path: faster versions of ops whose textbook versions (the course's
task blocks) live in ``minigrad.functional``. Used only through ``minigrad.backends.accelerated``
(switchable; absent from student copies and grading trees, where every op runs the blocks).

* ``columns``: im2col/col2im on bounded chunks of output rows into scratch buffers, the 1x1 shortcut
* ``conv``: Conv2d and ConvTranspose2d on those chunks; the stride-1 full-convolution backward
* ``pool``: the separable max-pool (non-overlapping windows) and the assignment backward
* ``interp``: interpolate's forward and adjoint as banded matrix products
* ``norm``: batch_norm a tile of whole channels at a time: one visit forward, one backward
* ``tiles``: cache-sized tiles of (N, C, H*W) and the threads that share them out
"""
from .conv import Conv2d, ConvTranspose2d
from .interp import Interpolate
from .norm import BatchNorm
from .pool import MaxPool2d

__all__ = ["BatchNorm", "Conv2d", "ConvTranspose2d", "Interpolate", "MaxPool2d"]
