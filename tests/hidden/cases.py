"""Hidden grading cases (instructor material: never in a student copy, never inside a sandbox).

Each is a ``case(...)`` as in ``minigrad_course/cases.py``; the grader runs it like a visible
one, and feedback shows only its name and whether it passed.
"""
from minigrad_course.cases import case

CASES = [
    case("optim.sgd", "hidden: Nesterov, ten steps", "optimizer",
         dict(optimizer="SGD", hyper={"lr": 0.03, "momentum": 0.95, "nesterov": True}, steps=10, n_params=1),
         lambda r: {"p0": r.standard_normal((4, 3)), "g0": r.standard_normal((10, 4, 3))}, rtol=1e-7),
    case("crop.backward", "hidden: unbatched odd crop", "center_crop", {"size": [3, 2]},
         lambda r: {"x": r.standard_normal((2, 6, 5)), "g": r.standard_normal((2, 3, 2))}),
    case("conv.conv2d_backward", "hidden: 5x5, stride 3, padding 2", "conv2d",
         dict(stride=3, padding=2, dilation=1),
         lambda r: {"x": r.standard_normal((2, 2, 9, 10)), "w": r.standard_normal((3, 2, 5, 5)),
                    "b": r.standard_normal(3), "g": r.standard_normal((2, 3, 3, 4))}),
    case("conv.im2col", "hidden: 3x2 kernel, stride (3, 2)", "im2col",
         dict(kernel=[3, 2], stride=[3, 2], dilation=[1, 1], out_hw=[4, 4]),
         lambda r: {"src": r.standard_normal((2, 2, 12, 9))}),
]
