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


def tiny(kind):
    """A stand-in for the registry's defaults: two tiny U-Nets that train in a second."""
    from unet.train import TrainConfig

    return TrainConfig(epochs=2, steps_per_epoch=2, batch_size=1, tile=44, depth=2,
                       base_channels={"unet": 2, "unet++": 3}[kind])


@pytest.mark.slow
def test_compare_trains_each_model_on_each_fold_and_tabulates_them(tmp_path, monkeypatch):
    import unet.train
    from unet.compare import CompareConfig, compare

    cfg = CompareConfig(models=("unet", "unet++"), folds=(0, 3), schedule=0.5, out=str(tmp_path))
    result = compare(cfg, progress=False, defaults=tiny)
    rows = result["rows"]
    assert [(r["model"], r["held_out"]) for r in rows] == [
        ("unet", "top-left"), ("unet", "bottom-right"), ("unet++", "top-left"), ("unet++", "bottom-right")]
    assert all(r["epochs"] == 1 and r["steps"] == 2 and r["step_seconds"] > 0 for r in rows)
    assert rows[0]["parameters"] != rows[2]["parameters"]  # each model's own count
    for entry in result["table"]:
        for key in ("iou", "dice", "object_f1"):
            values = [r[key] for r in rows if r["model"] == entry["model"]]
            assert entry[key]["mean"] == pytest.approx(np.mean(values))
            assert entry[key]["std"] == pytest.approx(np.std(values, ddof=1))
            assert (entry[key]["min"], entry[key]["max"]) == (min(values), max(values))
    for name in ("compare.md", "compare.csv", "compare.json", "compare.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert len((tmp_path / "compare.csv").read_text().strip().splitlines()) == 1 + 4
    assert "0.5 x their epochs" in (tmp_path / "compare.md").read_text()

    # an interrupted or repeated comparison reuses finished runs with the same configuration...
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(unet.train, "train", no_training)
    again = compare(cfg, progress=False, defaults=tiny)
    assert again["rows"] == rows
    # a table of the finished runs only names the runs it lacks
    cfg.train, cfg.folds = False, (0, 1, 3)
    partial = compare(cfg, progress=False, defaults=tiny)
    assert partial["rows"] == [rows[0], rows[1], rows[2], rows[3]] and partial["missing"] == ["unet fold 1", "unet++ fold 1"]
    assert "Not run (absent from the table): unet fold 1, unet++ fold 1." in (tmp_path / "compare.md").read_text()
    cfg.train, cfg.folds = True, (0, 3)
    # ...but not runs made with another configuration
    cfg.schedule = 1.0
    with pytest.raises(AssertionError, match="trained again"):
        compare(cfg, progress=False, defaults=tiny)


@pytest.mark.parametrize("field, value, message", [
    ("models", ("unet", "segnet"), "models must be among"), ("models", (), "at least one model"),
    ("folds", (0, 4), "folds must be among 0..3"), ("schedule", 0.0, "schedule must be in"),
    ("schedule", 1.5, "schedule must be in")])
def test_compare_refuses_bad_settings_by_name(tmp_path, field, value, message):
    from unet.compare import CompareConfig, compare

    cfg = CompareConfig(out=str(tmp_path))
    setattr(cfg, field, value)
    with pytest.raises(ValueError, match=message):
        compare(cfg, progress=False, defaults=tiny)


@pytest.mark.slow
def test_each_models_defaults_build_and_take_their_tile():
    from unet import zoo

    for kind in zoo.KINDS:
        cfg = zoo.train_config(kind)
        model = zoo.model_from_config(cfg)
        assert model.output_size(cfg.tile) > 0  # raises for a tile the model cannot take
        assert (cfg.epochs, cfg.steps_per_epoch, cfg.batch_size) == (20, 25, 4)
    assert zoo.train_config("unet++").depth == 4  # --deep-supervision then gives the pruned L1..L4
