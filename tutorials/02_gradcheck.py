# %% [markdown]
# # 2. Gradient checking, then your own backward passes
#
# **You will learn:** central finite differences and why they need float64; how `mg.gradcheck`
# compares a hand-written backward pass with them (full and directional checks); how to read a
# `GradcheckError`; then you write the backward passes of minigrad's elementwise ops and of the
# matrix product, and let gradcheck judge them.
#
# **Your tasks in this notebook:**
#
# | task | file | what you write |
# |---|---|---|
# | `gradcheck.central_difference` | `minigrad/gradcheck.py` | `central_difference` |
# | `autograd.elementwise` | `minigrad/ops/elementwise.py` | the `backward` of Add, Sub, Mul, Div, Pow, Exp, Log, ReLU |
# | `autograd.matmul` | `minigrad/ops/matmul.py` | `MatMul.backward` |
#
# Check each with `python -m minigrad_course check <task>`. Needs: `autograd.toposort` (notebook 1).

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
from minigrad_course import require, verdict
from minigrad.gradcheck import central_difference

# %% [markdown]
# ## Central differences and the choice of $\varepsilon$
# $$f'(x) \approx \frac{f(x+\varepsilon) - f(x-\varepsilon)}{2\varepsilon}$$
# has a truncation error $\approx \frac{\varepsilon^2}{6} |f'''(x)|$ and a rounding error
# $\approx \frac{u\,|f(x)|}{\varepsilon}$, where $u$ is the unit roundoff ($6\times10^{-8}$ in float32,
# $1.1\times10^{-16}$ in float64). A small $\varepsilon$ fights the first and feeds the second.
# Here is the error for $f = \tanh$ at $x = 0.7$, in both precisions, with plain NumPy.

# %%
f, df = np.tanh, lambda x: 1 - np.tanh(x) ** 2
eps_values = np.logspace(-12, -1, 45)
errors = {}
for dtype in (np.float32, np.float64):
    x0 = dtype(0.7)
    errors[dtype] = np.array([abs(float((f(x0 + dtype(e)) - f(x0 - dtype(e))) / (2 * dtype(e))) - df(0.7))
                              for e in eps_values])
error_at = {dtype: abs(float((f(dtype(0.7) + dtype(1e-6)) - f(dtype(0.7) - dtype(1e-6))) / (2 * dtype(1e-6))) - df(0.7))
            for dtype in (np.float32, np.float64)}
fig, ax = plt.subplots(figsize=(7, 4.5))
for dtype, color in ((np.float32, "tab:orange"), (np.float64, "tab:blue")):
    ax.loglog(eps_values, np.maximum(errors[dtype], 1e-17), color=color, label=np.dtype(dtype).name)
    ax.plot(1e-6, error_at[dtype], "o", color=color)
ax.axvline(1e-6, color="grey", ls=":", label="gradcheck's eps = 1e-6")
ax.set_xlabel(r"$\varepsilon$")
ax.set_ylabel("|central difference - exact derivative|")
ax.set_title(f"at eps = 1e-6, float32 is off by {error_at[np.float32]:.0e}, float64 by {error_at[np.float64]:.0e}")
ax.legend()
plt.show()
best32 = errors[np.float32].min()
print(f"float32: best error {best32:.1e} (only near eps ~ 1e-2), at eps = 1e-6: {error_at[np.float32]:.1e}")
print(f"float64: best error {errors[np.float64].min():.1e},           at eps = 1e-6: {error_at[np.float64]:.1e}")
assert error_at[np.float32] > 1e-3 and error_at[np.float64] < 1e-9  # why gradcheck wants float64
assert 1e-7 < best32 < 1e-5 and eps_values[errors[np.float32].argmin()] > 1e-3  # float32 needs a huge eps

# %% [markdown]
# ## Your turn: `central_difference`
# For a function with many inputs and outputs we need the whole numeric Jacobian with respect
# to one input tensor $t$, one column per element $j$ of $t$:
# $$J_{:,j} = \frac{f(x + \varepsilon e_j) - f(x - \varepsilon e_j)}{2\varepsilon}.$$
# Perturb `t.data` in place (a flat view: `t.data.reshape(-1)`), evaluate with `_value(fn, inputs)`,
# and put every element back. The cell compares your Jacobian with the exact one for
# $f(x) = \tanh(x)\,M$ (a diagonal Jacobian times a fixed matrix) and checks that $x$ is restored.

# %%
require("gradcheck.central_difference")
rng = np.random.default_rng(0)
x = mg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
M = rng.standard_normal((3, 4))
x_before = x.numpy().copy()
J = central_difference(lambda x: x.tanh() @ mg.tensor(M), [x], x, 1e-6)
# exact: out[i, k] = sum_j tanh(x[i, j]) M[j, k], so d out[i, k] / d x[i', j] = [i = i'] tanh'(x[i, j]) M[j, k]
J_exact = np.zeros((2 * 4, 2 * 3))
for i in range(2):
    for j in range(3):
        for k in range(4):
            J_exact[i * 4 + k, i * 3 + j] = (1 - np.tanh(x_before[i, j]) ** 2) * M[j, k]
verdict("gradcheck.central_difference", "Jacobian of tanh(x) @ M", J, J_exact, 1e-7)
verdict("gradcheck.central_difference", "x restored", x.numpy(), x_before, 0);

# %% [markdown]
# ## How gradcheck uses it
# `mg.gradcheck(fn, inputs)` runs `backward()` once per output element to build the analytic
# Jacobian, and compares it with yours entry by entry: it passes when
# $|J_\text{analytic} - J_\text{numeric}| \le \text{atol} + \text{rtol}\,|J_\text{numeric}|$ everywhere.
# Otherwise it raises a `GradcheckError` that names the input, the worst entry, both values and
# the tolerances. Here is a planted bug: a ReLU whose backward lets gradients through where
# $x < 0$ too. (`np.maximum` forward, no minigrad op inside, so it runs before your next tasks.)

# %%
class LeakyBug(mg.Function):
    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, g):
        return (g,)  # wrong: should be g * (self.x > 0)


class ReLUFixed(LeakyBug):
    def backward(self, g):
        return (g * (self.x > 0),)


xr = mg.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
try:
    mg.gradcheck(lambda x: LeakyBug.apply(x), [xr])
    caught = None
except mg.GradcheckError as err:
    caught = str(err)
    print("GradcheckError:", caught)
assert caught is not None and "input 0" in caught and "(0,)" in caught  # the worst entry is x[0] = -1
assert mg.gradcheck(lambda x: ReLUFixed.apply(x), [xr])
print("the fixed backward passes")

# %% [markdown]
# ## Your turn: the elementwise backward passes
# Open `minigrad/ops/elementwise.py`. Each op's `backward(g)` returns $\partial L/\partial\text{input} = g \cdot \partial\,\text{out}/\partial\,\text{input}$
# for each input: for $a \cdot b$ that is $(g\,b,\; g\,a)$, for $a/b$ it is $(g/b,\; -g\,a/b^2)$,
# for $e^a$ it is $g\,e^a$, for $\log a$ it is $g/a$, for $a^p$ it is $g\,p\,a^{p-1}$. One more
# rule: when an input was **broadcast** (a bias of shape `(3,)` added to a `(2, 3)` batch),
# its gradient must be summed back to the input's shape, which `unbroadcast(grad, shape)` does.
#
# The cell runs gradcheck on an expression using every op with broadcasting, and compares the
# gradients with the formulas written out by hand.

# %%
require("autograd.elementwise", "autograd.toposort", "gradcheck.central_difference")
rng = np.random.default_rng(1)
p = mg.tensor(rng.uniform(0.5, 2.0, (2, 3)), requires_grad=True)
q = mg.tensor(rng.uniform(0.5, 2.0, (3,)), requires_grad=True)  # broadcast over p's rows


def expression(p, q):
    return mg.functional.relu((p * q + p / q - q**2).exp().log() - 1.0)


assert mg.gradcheck(expression, [p, q])
expression(p, q).sum().backward()
inner = p.numpy() * q.numpy() + p.numpy() / q.numpy() - q.numpy() ** 2  # exp then log give it back
on = (inner - 1.0 > 0).astype(float)
verdict("autograd.elementwise", "dL/dp", p.grad, on * (q.numpy() + 1 / q.numpy()), 1e-10)
verdict("autograd.elementwise", "dL/dq (summed over the broadcast rows)", q.grad,
        (on * (p.numpy() - p.numpy() / q.numpy() ** 2 - 2 * q.numpy())).sum(axis=0), 1e-10);

# %% [markdown]
# ## Your turn: the matrix product
# For $C = AB$ with upstream gradient $G = \partial L/\partial C$:
# $$\frac{\partial L}{\partial A} = G B^\top, \qquad \frac{\partial L}{\partial B} = A^\top G,$$
# and with batch axes (a `(5, 2, 3)` stack times one `(3, 4)` matrix) the shared matrix's
# gradient sums over the batch (`unbroadcast` again).

# %%
require("autograd.matmul", "autograd.toposort", "gradcheck.central_difference")
A = mg.tensor(rng.standard_normal((5, 2, 3)), requires_grad=True)
B = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
G = rng.standard_normal((5, 2, 4))
(A @ B).backward(G)
verdict("autograd.matmul", "dL/dA = G B^T", A.grad, G @ B.numpy().T, 1e-12)
verdict("autograd.matmul", "dL/dB = sum over the batch of A^T G", B.grad,
        np.einsum("nij,njk->ik", A.numpy().transpose(0, 2, 1), G), 1e-12)
A.zero_grad()
assert mg.gradcheck(lambda A, B: A @ B, [A, B])
print("gradcheck passes on A @ B");

# %% [markdown]
# ## Full and directional checks
# `mode="full"` builds whole Jacobians: one backward per output element and two forward
# passes per input element, fine for small inputs. `mode="directional"` compares one number per
# random pair of an output weighting $v$ and an input direction $u$: $v^\top J u$, from one backward
# pass (the gradient of $L = \langle v, f\rangle$, dotted with $u$), against
# $\frac{L(x + \varepsilon u) - L(x - \varepsilon u)}{2\varepsilon}$ (two forward passes),
# cheap enough for a whole network. Here both, on a two-layer perceptron built from your ops.

# %%
mg.manual_seed(0)
mlp = mg.nn.Sequential(mg.nn.Linear(4, 8), mg.nn.ReLU(), mg.nn.Linear(8, 3)).to(np.float64)
xs = mg.tensor(np.random.default_rng(2).standard_normal((5, 4)), requires_grad=True)
full = mg.gradcheck(lambda x, *params: mlp(x).tanh(), [xs, *mlp.parameters()])
directional = mg.gradcheck(lambda x, *params: mlp(x).tanh(), [xs, *mlp.parameters()], mode="directional")
print("MLP, full:", full, " directional:", directional)
assert full and directional

# %% [markdown]
# ## Exercises
# **1.** Run the matrix-product check in float32 (`A.to(np.float32)`, ...). Does gradcheck pass?
# Set `float32_passes` to `True` or `False` and explain with the figure above.

# %%
float32_passes = None  # exercise 1

# %%
if float32_passes is None:
    print("Exercise 1: not tried yet")
else:
    A32 = mg.tensor(A.numpy().astype(np.float32), requires_grad=True)
    B32 = mg.tensor(B.numpy().astype(np.float32), requires_grad=True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        actual = mg.gradcheck(lambda A, B: (A @ B).tanh(), [A32, B32], raise_exception=False)
    assert float32_passes == actual, "run it and look at the report"
    print(f"Exercise 1: correct (passes: {actual}); eps = 1e-6 in float32 has errors ~1e-2")

# %% [markdown]
# **2.** Plant a bug: `BadMul` below forgets to unbroadcast. Choose shapes for `u` and `v` for
# which gradcheck catches it, and shapes for which it does not.

# %%
class BadMul(mg.Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return g * self.b, g * self.a  # bug: no unbroadcast


shapes_caught = None  # exercise 2: a pair (shape_u, shape_v), e.g. ((4, 1), (3,)), for which gradcheck fails
shapes_missed = None  # exercise 2: and a pair for which it passes

# %%
if shapes_caught is None or shapes_missed is None:
    print("Exercise 2: not tried yet")
else:
    def bad_check(shape_u, shape_v):
        r = np.random.default_rng(3)
        u = mg.tensor(r.standard_normal(shape_u), requires_grad=True)
        v = mg.tensor(r.standard_normal(shape_v), requires_grad=True)
        try:
            return mg.gradcheck(lambda u, v: BadMul.apply(u, v), [u, v], raise_exception=False)
        except Exception:  # a shape error from the engine counts as caught too
            return False
    assert not bad_check(*shapes_caught), "gradcheck passes on these shapes: no broadcasting happens"
    assert bad_check(*shapes_missed), "gradcheck catches the bug on these shapes"
    print("Exercise 2: correct: only broadcasting exposes a missing unbroadcast")

# %% [markdown]
# **3.** Why can gradcheck not be trusted exactly at a ReLU kink? Compute the central difference
# of $\max(x, 0)$ at $x = 0$ (any $\varepsilon$) and compare with what a backward pass returns there.

# %%
kink_difference = None  # exercise 3: the central difference of max(x, 0) at x = 0

# %%
if kink_difference is None:
    print("Exercise 3: not tried yet")
else:
    assert np.isclose(kink_difference, 0.5), "(max(eps, 0) - max(-eps, 0)) / (2 eps) = ?"
    print("Exercise 3: correct: 0.5, but a backward pass returns 0 or 1 there; test away from kinks and ties")

# %% [markdown]
# *Measured run time: 3.6 s, with `pytest --nbmake` on 2 CPU cores shared with other jobs (load average 4.5).*
