"""The course's tasks: what each asks, where its code lives, and the order to do them in.

This file states what the source fixes: a task is the code between ``# BEGIN TASK <id>`` and
``# END TASK`` (one or more blocks, in the file named here), with its hint, notebook and
prerequisites. What the instructor decides (each task's points and release, all-or-nothing,
the releases and time limits) is stated once, in ``course.toml`` (read by ``config.py``),
never here.
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
    prerequisites: tuple = ()  # tasks whose code this task's tests also run (course.toml may change them)
    points: float | None = None  # stated in course.toml (None until load_course reads it)
    release: str | None = None  # stated in course.toml
    all_or_nothing: bool = False  # course.toml may set it
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
       "tutorials/01_autograd.ipynb", ()),
    _T("gradcheck.central_difference", "minigrad/gradcheck.py", "central_difference",
       "J[:, j] = (f(x + eps e_j) - f(x - eps e_j)) / (2 eps), one column per element of t; restore t",
       "tutorials/02_gradcheck.ipynb", ("autograd.toposort",)),
    _T("autograd.elementwise", "minigrad/ops/elementwise.py", "backward of Add, Sub, Mul, Div, Pow, Exp, Log, ...",
       "return the gradient for each input; sum over broadcast axes with unbroadcast()",
       "tutorials/02_gradcheck.ipynb", ("autograd.toposort", "gradcheck.central_difference")),
    _T("autograd.matmul", "minigrad/ops/matmul.py", "MatMul.backward",
       "da = g @ b^T, db = a^T @ g, then unbroadcast the batch axes",
       "tutorials/02_gradcheck.ipynb", ("autograd.toposort", "gradcheck.central_difference")),
    _T("conv.im2col", "minigrad/functional/im2col.py", "im2col",
       "copy the kh*kw shifted, strided windows of the input into the column matrix",
       "tutorials/03_im2col.ipynb", ()),
    _T("conv.col2im", "minigrad/functional/im2col.py", "col2im",
       "add each column entry back to the input pixel it was copied from (the adjoint of im2col)",
       "tutorials/03_im2col.ipynb", ("conv.im2col",)),
    _T("conv.conv2d_backward", "minigrad/functional/conv.py", "Conv2d.backward",
       "dW = g @ cols^T, db = g summed over (N, OH, OW), dx = crop(col2im(W^T @ g)) with cols = im2col(pad(x))",
       "tutorials/03_im2col.ipynb",
       ("autograd.toposort", "gradcheck.central_difference", "conv.im2col", "conv.col2im")),
    _T("conv.conv_transpose2d", "minigrad/functional/conv.py", "ConvTranspose2d.forward and .backward",
       "forward: y = crop(col2im(W^T @ x)) + b; backward: dx = W @ im2col(pad(g)), dW = x @ im2col(pad(g))^T",
       "tutorials/04_pool_and_transpose.ipynb",
       ("autograd.toposort", "gradcheck.central_difference", "conv.im2col", "conv.col2im")),
    _T("pool.max_pool2d_backward", "minigrad/functional/pool.py", "MaxPool2d.backward",
       "send each output's gradient to its window's winner: self.winner holds k = i*kw + j",
       "tutorials/04_pool_and_transpose.ipynb", ("autograd.toposort", "gradcheck.central_difference")),
    _T("crop.backward", "minigrad/functional/crop.py", "CenterCrop.backward",
       "place g in a zero array shaped like the input, at the cropped window",
       "tutorials/05_crop_concat.ipynb", ("autograd.toposort", "gradcheck.central_difference")),
    _T("unet.forward", "unet/model.py", "UpBlock.forward",
       "crop the skip to the upsampled map's size, then concatenate along channels, skip first: cat([skip, x])",
       "tutorials/05_crop_concat.ipynb",
       ("autograd.toposort", "autograd.elementwise", "autograd.matmul", "conv.im2col", "conv.col2im",
        "conv.conv2d_backward", "conv.conv_transpose2d", "pool.max_pool2d_backward", "crop.backward")),
    _T("loss.cross_entropy_backward", "minigrad/functional/loss.py", "CrossEntropy.backward",
       "dlogits = (softmax - onehot(target)) * w * g, divided by sum(w) for 'mean'",
       "tutorials/06_train_unet.ipynb", ("autograd.toposort", "gradcheck.central_difference")),
    _T("unet.weight_map", "unet/weights.py", "_two_nearest_distances and the eq. 2 lines of weight_map",
       "d1, d2 from one distance transform per object; w = w_c + w0 exp(-(d1+d2)^2 / (2 sigma^2)) on background",
       "tutorials/06_train_unet.ipynb", ()),
    _T("optim.sgd", "minigrad/optim.py", "SGD._update",
       "g = grad + wd*p; b = momentum*b + g (b = g at first); d = b (or g + momentum*b, Nesterov); p -= lr*d",
       "tutorials/06_train_unet.ipynb", ()),
    _T("optim.adam", "minigrad/optim.py", "Adam._update",
       "m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)",
       "tutorials/06_train_unet.ipynb", ()),
    _T("norm.batch_norm_backward", "minigrad/functional/norm.py", "BatchNorm.backward (the input gradient)",
       "dx_hat = g * w (self.weight, or 1); in training subtract its per-channel mean and x_hat times the "
       "per-channel mean of dx_hat * x_hat (means over self.axes); then multiply by self.inv_std",
       "tutorials/09_normalisation_and_upsampling.ipynb", ("autograd.toposort", "gradcheck.central_difference")),
    _T("interp.upsample_backward", "minigrad/functional/interp.py", "Interpolate.backward",
       "the adjoint: per axis A[o, i0[o]] += 1 - lam[o], A[o, i1[o]] += lam[o]; dx = A_rows^T @ g @ A_cols",
       "tutorials/09_normalisation_and_upsampling.ipynb", ("autograd.toposort", "gradcheck.central_difference")),
    _T("loss.dice_backward", "unet/losses.py", "SoftDice.backward",
       "dp = -g / G * (2 t (S + s) - (2 I + s)) / (S + s)^2 with self.inter = 2 I + s, self.total = S + s; "
       "the target gets None",
       "tutorials/09_normalisation_and_upsampling.ipynb", ("autograd.toposort", "gradcheck.central_difference")),
    _T("unetpp.forward", "unet/family.py", "UNetPlusPlus.nodes (the nested skips)",
       "node X[i, j] (j >= 1): its block conv{i}_{j} on the channel concatenation of X[i, 0..j-1] and X[i+1, j-1] "
       "upsampled by self._up",
       "tutorials/10_unet_family.ipynb",
       ("autograd.toposort", "autograd.elementwise", "autograd.matmul", "conv.im2col", "conv.col2im",
        "conv.conv2d_backward", "conv.conv_transpose2d", "pool.max_pool2d_backward", "norm.batch_norm_backward",
        "interp.upsample_backward")),
)

TASKS = {t.id: t for t in DEFAULT_TASKS}

#: the tasks whose code ``unet train`` runs (the default Adam; ``--optimizer sgd`` runs optim.sgd
#: instead), in teaching order; tests/instructor/test_student_release.py traces a training step
#: to keep it true. A student copy's README and STUDENT.md say which of them are still to come.
UNET_TRAIN_TASKS = ("autograd.toposort", "autograd.elementwise", "conv.im2col", "conv.col2im",
                    "conv.conv2d_backward", "conv.conv_transpose2d", "pool.max_pool2d_backward", "crop.backward",
                    "unet.forward", "loss.cross_entropy_backward", "unet.weight_map", "optim.adam")
