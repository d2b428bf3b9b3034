"""The two trained networks tutorial 10 ships (unet/data/family_unetpp.npz, family_attention.npz): small,
pickle-free, the configurations scripts/make_family_checkpoints.py records, and weights that score on the
held-out quadrant what their recorded history says (float16 rounding aside).

Re-creating them is not tested: the two runs take minutes of CPU (tens of minutes on a loaded machine),
too much for CI; the script's docstring holds the exact commands."""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from make_family_checkpoints import load_small  # noqa: E402

DATA = os.path.join(ROOT, "unet", "data")


def test_shipped_family_checkpoints_are_small_and_score_what_their_history_says():
    from unet.data import split_dataset
    from unet.inference import predict_mask
    from unet.metrics import evaluate

    _, held_out = split_dataset("nuclei")
    expected = {"family_unetpp": ("unet++", 574_812), "family_attention": ("attention", 553_397)}
    for name, (kind, parameters) in expected.items():
        path = os.path.join(DATA, f"{name}.npz")
        assert os.path.getsize(path) < 1.5e6
        with np.load(path, allow_pickle=False) as z:  # plain arrays only
            assert all(z[k].dtype != object for k in z.files)
        model, config, history = load_small(path)
        assert (config["model"], config["seed"], config["fold"]) == (kind, 0, -1)
        assert model.num_parameters() == parameters and not model.training
        assert 1 <= len(history) <= config["epochs"]
        scores = evaluate(predict_mask(model, held_out[0].image), held_out[0].instances)
        assert abs(scores["iou"] - history[-1]["iou"]) < 0.01, (name, scores, history[-1])
    _, upp, upp_history = load_small(os.path.join(DATA, "family_unetpp.npz"))
    assert (upp["deep_supervision"], upp["depth"], upp["epochs"], len(upp_history)) == (True, 4, 4, 4)
    _, att, _ = load_small(os.path.join(DATA, "family_attention.npz"))
    assert (att["feature_scale"], att["tile"], att["epochs"]) == (8, 128, 20)
