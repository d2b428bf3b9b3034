"""The basic differentiable ops, one file per concern (reading order):

* ``elementwise``: + - * / ** (the course's ``autograd.elementwise`` blocks), exp, log, relu, ...
* ``matmul``: the matrix product (the course's ``autograd.matmul`` block)
* ``reductions``: sum, mean, amax/amin, argmax/argmin
* ``shape``: reshape, permute/transpose, indexing, cat, stack
* ``compat``: PyTorch's extras: max/min with (values, indices), pad with its four modes

Everything is re-exported here: ``minigrad.ops.add``, ``minigrad.ops.Pow``, ... Each op is a
``Function`` whose ``forward`` and ``backward`` sit side by side; ``g`` in the docstrings is the
gradient flowing into the op's output.
"""
from .elementwise import (  # noqa: F401
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    add,
    sub,
    mul,
    div,
    PowZeroSafe,
    pow,
    Neg,
    Exp,
    Log,
    Sqrt,
    Tanh,
    ReLU,
    Sigmoid,
    neg,
    exp,
    log,
    sqrt,
    tanh,
    relu,
    sigmoid,
    Maximum,
    maximum,
    minimum,
    Cast,
    cast,
)
from .matmul import (  # noqa: F401
    MatMul,
    matmul,
)
from .reductions import (  # noqa: F401
    Sum,
    Max,
    SelectAlongDim,
    sum,
    mean,
    amax,
    amin,
    argmax,
    argmin,
)
from .shape import (  # noqa: F401
    Reshape,
    Permute,
    reshape,
    permute,
    transpose,
    GetItem,
    getitem,
    Cat,
    Stack,
    cat,
    stack,
)
from .compat import (  # noqa: F401
    max,
    min,
    PAD_MODES,
    Pad,
    pad,
)
