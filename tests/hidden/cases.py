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
CASES += [
    case("norm.batch_norm_backward", "hidden: training, float32 (N, C, L), weight without bias", "batch_norm",
         dict(training=True, momentum=0.2),
         lambda r: {k: v.astype("float32") for k, v in {
             "x": r.standard_normal((4, 5, 6)) * 3 + 4, "g": r.standard_normal((4, 5, 6)),
             "w": r.uniform(0.5, 2.0, 5), "running_mean": r.standard_normal(5),
             "running_var": r.uniform(0.5, 2.0, 5)}.items()}, rtol=1e-4, atol=1e-5),
    case("interp.upsample_backward", "hidden: bilinear, size (9, 7) from 4x5, float32", "interpolate",
         dict(mode="bilinear", align_corners=False, size=[9, 7]),
         lambda r: {"x": r.standard_normal((1, 2, 4, 5)).astype("float32"),
                    "g": r.standard_normal((1, 2, 9, 7)).astype("float32")}, rtol=1e-4, atol=1e-5),
    case("interp.upsample_backward", "hidden: nearest-exact, size (5, 3) from 3x7", "interpolate",
         dict(mode="nearest-exact", size=[5, 3]),
         lambda r: {"x": r.standard_normal((2, 1, 3, 7)), "g": r.standard_normal((2, 1, 5, 3))}),
    case("loss.dice_backward", "hidden: per batch, float32, smooth 1", "soft_dice", dict(per_image=False, smooth=1.0),
         lambda r: {"p": r.uniform(0, 1, (3, 1, 4, 4)).astype("float32"),
                    "t": (r.random((3, 1, 4, 4)) < 0.5).astype("float32"), "g": r.standard_normal(()).astype("float32")},
         rtol=1e-4, atol=1e-6),
    case("unetpp.forward", "hidden: depth 3, deep supervision, pruned to L^1", "unetpp",
         dict(num_classes=1, deep_supervision=True, base_channels=2, depth=3, prune=1),
         lambda r: {"x": r.standard_normal((2, 1, 8, 8)), "theta": r.standard_normal(3001),
                    "g": r.standard_normal(128)}, rtol=1e-6, atol=1e-9),
]
