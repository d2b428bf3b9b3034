# %% [markdown]
# # 1. Autograd from scratch
#
# **You will learn:** what a `Function` is (a forward and a hand-written backward side by side),
# how the engine orders the graph before walking it backwards (a topological sort), and why
# gradients *accumulate*.
#
# **Your task in this notebook** (write it before running the "your turn" cell):
#
# | task | file | what you write |
# |---|---|---|
# | `autograd.toposort` | `minigrad/tensor.py` | `Tensor._topological_order` |
#
# Check it any time with `python -m minigrad_course check autograd.toposort`.
# Needs: nothing before. Everything here is minigrad's real code: open `minigrad/tensor.py` next to this notebook.

# %%
import sys

import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad_course import require, verdict

# %% [markdown]
# ## A Function: forward and backward together
# For $y = x^2$ the chain rule says $\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\cdot 2x$.
# `forward` saves what `backward` will need ($x$); `backward` receives $g = \partial L/\partial y$
# and returns one gradient per input. We can call both by hand, without the engine:

# %%
class Square(mg.Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return (g * 2 * self.x,)


sq = Square()
x_values = np.array([1.0, 2.0, 3.0])
print("forward:", sq.forward(x_values), " backward(g = 1):", sq.backward(np.ones(3))[0])
assert np.array_equal(sq.backward(np.ones(3))[0], 2 * x_values)

# %% [markdown]
# ## The graph
# `Square.apply(x)` runs `forward` *and records the op*: the result remembers the `Function`
# that made it, and the `Function` remembers its inputs. Below, `a` is used twice. We write
# the two ops we need, `Times` and `Plus`, ourselves (minigrad's own `*` and `+` have their
# backward passes written by you in the next notebook, task `autograd.elementwise`).
#
# For an input that is itself an intermediate result (`c`, `d` below), the op keeps a
# data-less **stand-in** that only knows how it was made: the graph then does not keep every
# intermediate array alive (a U-Net would need twice the memory). Printing one says so.

# %%
class Times(mg.Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, g):
        return g * self.y, g * self.x  # d(xy)/dx = y, d(xy)/dy = x


class Plus(mg.Function):
    def forward(self, x, y):
        return x + y

    def backward(self, g):
        return g, g


a = mg.tensor(np.array(2.0), requires_grad=True)
b = mg.tensor(np.array(-3.0), requires_grad=True)
c = Times.apply(a, b)
d = Plus.apply(c, a)  # a is used twice: its gradient gets two contributions
e = d.tanh()
print("e =", e)

# %%
positions = {"a": (0, 1.2), "b": (0, 0), "c = a*b": (1.4, 0.6), "d = c+a": (2.8, 1.2), "e = tanh(d)": (4.2, 1.2)}
edges = [("a", "c = a*b"), ("b", "c = a*b"), ("c = a*b", "d = c+a"), ("a", "d = c+a"), ("d = c+a", "e = tanh(d)")]


def draw_graph(ax, order_labels=None):
    boxes = {}
    for name, (px, py) in positions.items():
        label = name if order_labels is None else f"{name}\nbackward step {order_labels[name]}"
        boxes[name] = ax.text(px, py, label, ha="center", va="center", bbox=dict(boxstyle="round", fc="lightyellow"))
    for src, dst in edges:
        (x0, y0), (x1, y1) = positions[src], positions[dst]
        # patchA/patchB clip each arrow at the outline of its two boxes (whatever their size:
        # the second graph's boxes have two lines), so the arrowheads stay visible
        clip = dict(patchA=boxes[src].get_bbox_patch(), patchB=boxes[dst].get_bbox_patch(), shrinkA=2, shrinkB=2)
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="-|>", lw=1.5, color="black", **clip))
        clip = dict(patchA=boxes[dst].get_bbox_patch(), patchB=boxes[src].get_bbox_patch(), shrinkA=2, shrinkB=2)
        ax.annotate("", xy=(x0, y0 - 0.12), xytext=(x1, y1 - 0.12),
                    arrowprops=dict(arrowstyle="-|>", lw=1.2, color="tab:red", ls="--", **clip))
    ax.plot([], [], color="black", label="forward: inputs -> result")
    ax.plot([], [], color="tab:red", ls="--", label="backward: gradient flows back along the same edges")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(-0.6, 5.0)
    ax.set_ylim(-0.5, 1.7)
    ax.axis("off")


fig, ax = plt.subplots(figsize=(9, 3.2))
draw_graph(ax)
ax.set_title("the graph of e = tanh(a*b + a)")
plt.show()

# %% [markdown]
# ## The topological order (your task)
# `backward()` must hand each tensor's gradient on only once it is *complete*: `d` receives
# its gradient from `e`, `a` from both `c` and `d`. So it visits the nodes in an order where
# every tensor comes **before** the tensors it was made from: $e, d, c$ before $a$ and $b$.
# That is a topological order of the reversed graph.
#
# Write `Tensor._topological_order` as an **iterative** depth-first search (an explicit stack,
# no recursion): post-order (a node after all its inputs), then reversed. A chain of 10,000
# ops must work, far beyond Python's recursion limit. Follow `node._ctx.parents` for a
# node's inputs, visit only tensors that require grad, and visit each node once.
#
# **Your turn:** run the cell. It names the nodes of your order, checks that no node comes
# after one of its inputs, and pushes a gradient through a 10,000-op chain.

# %%
require("autograd.toposort")


def label(t):
    """A node's name: the leaves by identity, the stand-ins by the op that made them."""
    for name, leaf in (("a", a), ("b", b), ("e = tanh(d)", e)):
        if t is leaf:
            return name
    op = repr(t).split("output of ")[1].split(";")[0]  # "<graph stand-in for the output of Times; ...>"
    return {"Times": "c = a*b", "Plus": "d = c+a"}[op]


order = e._topological_order()
names = [label(t) for t in order]
print(" -> ".join(names))
position = {name: i for i, name in enumerate(names)}
must_precede = [("e = tanh(d)", "d = c+a"), ("d = c+a", "c = a*b"), ("d = c+a", "a"), ("c = a*b", "a"), ("c = a*b", "b")]
wrong_pairs = [(first, later) for first, later in must_precede if position[later] < position[first]]
verdict("autograd.toposort", "each node once", len(names), 5, 0)
verdict("autograd.toposort", "nodes out of order" + "".join(
    f" ['{later}' comes before '{first}', which was made from it]" for first, later in wrong_pairs[:1]),
    len(wrong_pairs), 0, 0)

chain_input = mg.tensor(np.array(1.0), requires_grad=True)
y = chain_input
for _ in range(10_000):
    y = Times.apply(y, 1.0001)
y.backward()
print("Python's recursion limit:", sys.getrecursionlimit())
verdict("autograd.toposort", "gradient through a 10,000-op chain", chain_input.grad, 1.0001**10_000, 1e-10);

# %%
fig, ax = plt.subplots(figsize=(9, 3.4))
draw_graph(ax, {name: i + 1 for i, name in enumerate(names)})
ax.set_title("backward() walks the red arrows, visiting the nodes in your topological order")
plt.show()

# %% [markdown]
# ## Gradients accumulate
# `a` feeds both `c` and `d`, so the engine *adds* both paths:
# $$\frac{\partial e}{\partial a} = \tanh'(d)\,\Big(\underbrace{b}_{\text{via } c} + \underbrace{1}_{\text{direct}}\Big),\qquad \tanh'(d) = 1 - \tanh^2(d).$$
# Leaves also accumulate *across* `backward()` calls until you zero them.

# %%
e.backward()
expected = (1 - np.tanh(d.item()) ** 2) * (b.item() + 1)
print("a.grad =", a.grad, " expected", expected)
assert np.isclose(a.grad, expected, rtol=1e-12)
first = float(a.grad)
Square.apply(a).backward()   # d(a^2)/da = 2a = 4 is added to what a.grad already holds
print("after one more backward, a.grad =", a.grad, "(accumulated); zero it with a.zero_grad()")
assert np.isclose(a.grad, first + 2 * a.item())
a.zero_grad()
assert a.grad is None

# %% [markdown]
# ## In place, and when it is refused
# `F.relu(h, inplace=True)` writes $\max(h, 0)$ into h's own array and returns h, now the ReLU's
# output (the U-Net does this after every convolution: one array less per layer). Overwriting
# is only safe while nothing recorded still needs h's old values, so minigrad refuses it for a
# leaf that requires grad and for a tensor some op has already used (which may have saved it).

# %%
h = a * 3.0
r = F.relu(h, inplace=True)
print("same tensor:", r is h, " value:", r.item())
assert r is h and r.item() == 6.0
h2 = a * 3.0
s = h2 * h2  # Mul keeps h2's array for its backward
try:
    F.relu(h2, inplace=True)
    refused = False
except RuntimeError as err:
    refused = True
    print("refused:", err)
assert refused

# %% [markdown]
# ## Exercises
# Each exercise has a cell to fill in and a check cell; the checks say "not tried yet" until you do.
#
# **1.** Make `Cube` ($y = x^3$) return its gradient, then run the check: it compares with
# $3x^2$ (the next notebook checks backward passes without knowing the answer).

# %%
class Cube(mg.Function):
    def forward(self, x):
        self.x = x
        return x**3

    def backward(self, g):
        return None  # exercise 1: return the gradient with respect to x (a tuple with one array)


# %%
x3 = mg.tensor(np.array([-1.5, 0.3, 2.0]), requires_grad=True)
Cube.apply(x3).sum().backward()
if x3.grad is None:
    print("Exercise 1: not tried yet")
else:
    assert np.allclose(x3.grad, 3 * x3.numpy() ** 2), f"got {x3.grad}, expected {3 * x3.numpy() ** 2}"
    print("Exercise 1: correct")

# %% [markdown]
# **2.** A *recursive* depth-first search on the 10,000-multiplication chain above would need
# one Python stack frame per node. How many frames deep would it go (count the nodes)? Compare
# with `sys.getrecursionlimit()`.

# %%
recursion_depth = None  # exercise 2: an integer

# %%
if recursion_depth is None:
    print("Exercise 2: not tried yet")
else:
    assert abs(recursion_depth - 10_001) <= 1, "count the nodes of the chain: the input and every product"
    print(f"Exercise 2: correct: {recursion_depth} frames > the limit of {sys.getrecursionlimit()}")

# %% [markdown]
# **3.** Call `backward()` twice on the same graph: what happens the second time, `"error"` or
# `"gradients doubled"`? Try it, then try `backward(retain_graph=True)` the first time.

# %%
second_backward = None  # exercise 3: "error" or "gradients doubled"

# %%
if second_backward is None:
    print("Exercise 3: not tried yet")
else:
    assert second_backward == "error", "try it: z = Times.apply(a, b); z.backward(); z.backward()"
    print("Exercise 3: correct: backward frees what forward saved, unless retain_graph=True")

# %% [markdown]
# *Measured run time: 3.7 s, with `pytest --nbmake` on 2 CPU cores shared with other jobs (load average 4.5).*
