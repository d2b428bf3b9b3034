# %% [markdown]
# # 1. Autograd from scratch
#
# **You will learn:** what a `Function` is (a forward and a hand-written backward side by side),
# how minigrad orders the graph before walking it backwards (a topological sort), and why
# gradients *accumulate*.
#
# Everything here is minigrad's real code: open `minigrad/tensor.py` next to this notebook.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minigrad as mg
import minigrad.functional as F

# %% [markdown]
# ## A Function: forward and backward together
# For `out = x * x`, the chain rule says `dL/dx = dL/dout * 2x`. `forward` saves what
# `backward` will need (`x`); `backward` receives `g = dL/dout` and returns one gradient per input.

# %%
class Square(mg.Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return (g * 2 * self.x,)


x = mg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
y = Square.apply(x).sum()
y.backward()
print("x.grad =", x.grad, " (expected 2x =", 2 * x.numpy(), ")")

# %% [markdown]
# ## The graph and its topological order
# Every tensor made by an op remembers the op (`_ctx`) and the op remembers its inputs.
# `backward()` needs an order in which each tensor comes *before* the tensors it was made from,
# so that its gradient is complete before it is passed on. minigrad finds it with an
# iterative depth-first search (no recursion, so 10,000-op chains work).
#
# One detail: for an input that is itself an intermediate result (`c`, `d` below), the op
# keeps a data-less *stand-in* that only knows how it was made (`c._ctx`). The graph then does
# not keep every intermediate array alive (a U-Net would need twice the memory). So we name
# the nodes of the order by the op that made them.

# %%
a = mg.tensor(np.array(2.0), requires_grad=True)
b = mg.tensor(np.array(-3.0), requires_grad=True)
c = a * b
d = c + a          # a is used twice: its gradient gets two contributions
e = d.tanh()
order = e._topological_order()
names = {id(a): "a", id(b): "b", id(c._ctx): "c = a*b", id(d._ctx): "d = c+a", id(e._ctx): "e = tanh(d)"}
print(" -> ".join(names[id(t if t.is_leaf else t._ctx)] for t in order))
print(order[1])  # the stand-in for d

# %%
positions = {"a": (0, 1), "b": (0, 0), "c = a*b": (1, 0.5), "d = c+a": (2, 1), "e = tanh(d)": (3, 1)}
edges = [("a", "c = a*b"), ("b", "c = a*b"), ("c = a*b", "d = c+a"), ("a", "d = c+a"), ("d = c+a", "e = tanh(d)")]
fig, ax = plt.subplots(figsize=(8, 3))
for src, dst in edges:
    (x0, y0), (x1, y1) = positions[src], positions[dst]
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", lw=1.5))
for name, (px, py) in positions.items():
    ax.text(px, py, name, ha="center", va="center", bbox=dict(boxstyle="round", fc="lightyellow"))
ax.set_xlim(-0.5, 3.5)
ax.set_ylim(-0.5, 1.5)
ax.axis("off")
ax.set_title("forward: left to right; backward walks the same arrows right to left")
plt.show()

# %% [markdown]
# ## Gradients accumulate
# `a` feeds both `c` and `d`, so `de/da = tanh'(d) * (b + 1)`: the engine adds both paths.
# Leaves also accumulate *across* `backward()` calls until you zero them.

# %%
e.backward()
expected = (1 - np.tanh(d.item()) ** 2) * (b.item() + 1)
print("a.grad =", a.grad, " expected", expected)
(a * 1.0).backward()
print("after one more backward, a.grad =", a.grad, "(accumulated); zero it with a.zero_grad()")

# %% [markdown]
# ## In place, and when it is refused
# `F.relu(h, inplace=True)` writes max(h, 0) into h's own array and returns h, now the ReLU's
# output (the U-Net does this after every convolution: one array less per layer). Overwriting
# is only safe while nothing recorded still needs h's old values, so minigrad refuses it for a
# leaf that requires grad and for a tensor some op has already used (which may have saved it).

# %%
h = a * 3.0
r = F.relu(h, inplace=True)
print("same tensor:", r is h, " value:", r.item())
h2 = a * 3.0
s = h2 * h2  # Mul keeps h2's array for its backward
try:
    F.relu(h2, inplace=True)
except RuntimeError as err:
    print("refused:", err)

# %% [markdown]
# ## Exercises
# 1. Write a `Cube` Function and check it with `mg.gradcheck` (float64 inputs).
# 2. Build a chain of 10,000 multiplications and call `backward()`. Why would a recursive
#    topological sort fail here?
# 3. What happens if you call `backward()` twice on the same graph? Try `retain_graph=True`.
