"""The quadrant folds of the nuclei image and ``unet compare`` (the U-Net family side by side)."""
import numpy as np
import pytest

from unet.data import QUADRANTS, load_nuclei, split_dataset


def test_the_four_folds_hold_out_each_quadrant_once():
    image, _ = load_nuclei()
    h2, w2 = image.shape[0] // 2, image.shape[1] // 2
    corners = {"top-left": image[:h2, :w2], "top-right": image[:h2, w2:],
               "bottom-left": image[h2:, :w2], "bottom-right": image[h2:, w2:]}
    for fold, name in enumerate(QUADRANTS):
        train, held = split_dataset("nuclei", fold=fold)
        assert len(train) == 3 and len(held) == 1
        assert np.array_equal(held[0].image, corners[name])
        # the held-out quadrant is never among the training ones
        assert not any(np.array_equal(r.image, corners[name]) for r in train)
        assert {id(r.image) for r in train}.isdisjoint({id(held[0].image)})
    # the default is the bottom-right quadrant, as before folds existed
    assert np.array_equal(split_dataset("nuclei")[1][0].image, corners["bottom-right"])


@pytest.mark.parametrize("fold", [4, -5, 1.0, True, "0"])
def test_a_bad_fold_is_refused_by_name(fold):
    with pytest.raises(ValueError, match="fold must be an integer in"):
        split_dataset("nuclei", fold=fold)
