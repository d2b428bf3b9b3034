"""The course's tasks: what each asks, where its code lives, and the order to do them in.

This is the built-in default; an instructor's ``course.toml`` (see ``config.py``) may change
points, prerequisites, release groups and time limits, but the files and fences are fixed by
the source: a task is the code between ``# BEGIN TASK <id>`` and ``# END TASK`` (one or more
blocks, in the file named here).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Task:
    id: str
    file: str  # path relative to the project root
    function: str  # what the student writes (the function or method holding the block)
    hint: str  # one line, shown in the stub
    notebook: str  # the tutorial that goes with it
    prerequisites: tuple = ()  # tasks whose code this task's tests also run
    points: float = 10.0
    release: str = "week1"
    all_or_nothing: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def marker(self) -> str:
        """The pytest marker of the task's tests: the id with "." replaced by "_"."""
        return self.id.replace(".", "_")


_T = Task
#: in teaching order: every task comes after its prerequisites
DEFAULT_TASKS = (
    _T("autograd.toposort", "minigrad/tensor.py", "Tensor._topological_order",
       "order the graph so every tensor comes before its inputs (iterative DFS, no recursion)",
       "tutorials/01_autograd.ipynb", (), 10, "week1"),
    _T("gradcheck.central_difference", "minigrad/gradcheck.py", "central_difference",
       "J[:, j] = (f(x + eps e_j) - f(x - eps e_j)) / (2 eps), one column per element of t; restore t",
       "tutorials/02_gradcheck.ipynb", ("autograd.toposort",), 10, "week1"),
    _T("autograd.elementwise", "minigrad/ops.py", "backward of Add, Sub, Mul, Div, Pow, Exp, Log, ...",
       "return the gradient for each input; sum over broadcast axes with unbroadcast()",
       "tutorials/02_gradcheck.ipynb", ("autograd.toposort", "gradcheck.central_difference"), 10, "week1"),
    _T("autograd.matmul", "minigrad/ops.py", "MatMul.backward",
       "da = g @ b^T, db = a^T @ g, then unbroadcast the batch axes",
       "tutorials/02_gradcheck.ipynb", ("autograd.toposort", "gradcheck.central_difference"), 10, "week1"),
    _T("conv.im2col", "minigrad/functional/im2col.py", "im2col",
       "copy the kh*kw shifted, strided windows of the input into the column matrix",
       "tutorials/03_im2col.ipynb", (), 10, "week2"),
    _T("conv.col2im", "minigrad/functional/im2col.py", "col2im",
       "add each column entry back to the input pixel it was copied from (the adjoint of im2col)",
       "tutorials/03_im2col.ipynb", ("conv.im2col",), 10, "week2"),
    _T("conv.conv2d_backward", "minigrad/functional/conv.py", "Conv2d.backward",
       "dW = g @ cols^T, db = g summed over (N, OH, OW), dx = crop(col2im(W^T @ g)) with cols = im2col(pad(x))",
       "tutorials/03_im2col.ipynb",
       ("autograd.toposort", "gradcheck.central_difference", "conv.im2col", "conv.col2im"), 10, "week2"),
    _T("conv.conv_transpose2d", "minigrad/functional/conv.py", "ConvTranspose2d.forward and .backward",
       "forward: y = crop(col2im(W^T @ x)) + b; backward: dx = W @ im2col(pad(g)), dW = x @ im2col(pad(g))^T",
       "tutorials/04_pool_and_transpose.ipynb",
       ("autograd.toposort", "gradcheck.central_difference", "conv.im2col", "conv.col2im"), 10, "week3"),
    _T("pool.max_pool2d_backward", "minigrad/functional/pool.py", "MaxPool2d.backward",
       "send each output's gradient to its window's winner: self.winner holds k = i*kw + j",
       "tutorials/04_pool_and_transpose.ipynb", ("autograd.toposort", "gradcheck.central_difference"), 10, "week3"),
    _T("crop.backward", "minigrad/functional/crop.py", "CenterCrop.backward",
       "place g in a zero array shaped like the input, at the cropped window",
       "tutorials/05_crop_concat.ipynb", ("autograd.toposort", "gradcheck.central_difference"), 5, "week3"),
    _T("unet.forward", "unet/model.py", "UpBlock.forward",
       "crop the skip to the upsampled map's size, then concatenate along channels, skip first: cat([skip, x])",
       "tutorials/05_crop_concat.ipynb",
       ("autograd.toposort", "autograd.elementwise", "autograd.matmul", "conv.im2col", "conv.col2im",
        "conv.conv2d_backward", "conv.conv_transpose2d", "pool.max_pool2d_backward", "crop.backward"), 5, "week3"),
    _T("loss.cross_entropy_backward", "minigrad/functional/loss.py", "CrossEntropy.backward",
       "dlogits = (softmax - onehot(target)) * w * g, divided by sum(w) for 'mean'",
       "tutorials/06_train_unet.ipynb", ("autograd.toposort", "gradcheck.central_difference"), 10, "week4"),
    _T("unet.weight_map", "unet/weights.py", "_two_nearest_distances and the eq. 2 lines of weight_map",
       "d1, d2 from one distance transform per object; w = w_c + w0 exp(-(d1+d2)^2 / (2 sigma^2)) on background",
       "tutorials/06_train_unet.ipynb", (), 10, "week4"),
    _T("optim.sgd", "minigrad/optim.py", "SGD._update",
       "g = grad + wd*p; b = momentum*b + g (b = g at first); d = b (or g + momentum*b, Nesterov); p -= lr*d",
       "tutorials/06_train_unet.ipynb", (), 5, "week4"),
    _T("optim.adam", "minigrad/optim.py", "Adam._update",
       "m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)",
       "tutorials/06_train_unet.ipynb", (), 5, "week4"),
)

TASKS = {t.id: t for t in DEFAULT_TASKS}
