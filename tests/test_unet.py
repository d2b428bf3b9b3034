"""The U-Net: gradcheck of a whole small network, PyTorch twin, the paper's sizes, weight
map, metrics, overlap-tile equality, training, exact resume and the command line."""
import json
import os

import numpy as np
import pytest

import minigrad as mg
from conftest import assert_close
from unet import UNet
from unet.metrics import evaluate, object_f1
from unet.weights import separate_touching, weight_map


def small_unet(dtype=np.float64, **kw):
    mg.manual_seed(3)
    cfg = dict(depth=2, base_channels=2, num_classes=2)
    cfg.update(kw)
    return UNet(**cfg).to(dtype)


@pytest.mark.unet_forward
def test_small_unet_passes_directional_gradcheck():
    model = small_unet()
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, 1, 44, 44)), requires_grad=True)
    assert mg.gradcheck(lambda x, *params: model(x), [x, *model.parameters()], mode="directional", n_directions=2)


def torch_unet(torch, model, x):
    """The same network written directly in PyTorch, using the minigrad model's weights."""
    tf = torch.nn.functional
    p = {n: torch.tensor(a.numpy(), requires_grad=True) for n, a in model.named_parameters()}

    def double(x, prefix):
        x = tf.relu(tf.conv2d(x, p[prefix + "conv1.weight"], p[prefix + "conv1.bias"]))
        return tf.relu(tf.conv2d(x, p[prefix + "conv2.weight"], p[prefix + "conv2.bias"]))

    skips = []
    for level in range(1, model.depth + 1):
        x = double(x, f"down{level}.")
        skips.append(x)
        x = tf.max_pool2d(x, 2)
    x = double(x, "bottleneck.")
    for level in range(model.depth, 0, -1):
        x = tf.conv_transpose2d(x, p[f"up{level}.up.weight"], p[f"up{level}.up.bias"], stride=2)
        skip = skips[level - 1]
        top, left = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
        skip = skip[:, :, top : top + x.shape[2], left : left + x.shape[3]]
        x = double(torch.cat([skip, x], 1), f"up{level}.conv.")
    return tf.conv2d(x, p["head.weight"], p["head.bias"]), p


@pytest.mark.unet_forward
def test_unet_matches_a_pytorch_twin(torch):
    model = small_unet(depth=3, base_channels=3)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1, 92, 100))
    target = rng.integers(0, 2, (2,) + model(mg.tensor(x)).shape[2:])
    logits = model(mg.tensor(x))
    mg.functional.cross_entropy(logits, target).backward()
    logits_t, params_t = torch_unet(torch, model, torch.tensor(x))
    torch.nn.functional.cross_entropy(logits_t, torch.tensor(target)).backward()
    assert_close(logits.data, logits_t, rtol=1e-10, atol=1e-12, what="logits")
    for name, param in model.named_parameters():
        assert_close(param.grad, params_t[name].grad, rtol=1e-9, atol=1e-13, what=name)


def test_paper_configuration():
    model = UNet()
    assert model.num_parameters() == 31_030_658
    assert sum(1 for name, _ in model.named_parameters() if name.endswith("weight")) == 23
    assert model.output_size(572) == 388
    assert model.skip_crops(572) == [(64, 56), (136, 104), (280, 200), (568, 392)]
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "down1.conv1.weight" and names[-2:] == ["head.weight", "head.bias"]
    assert names.index("bottleneck.conv1.weight") < names.index("up4.up.weight") < names.index("up4.conv.conv1.weight") \
        < names.index("up1.up.weight")
    std = model.down2.conv1.weight.numpy().std()
    assert abs(std / np.sqrt(2 / (64 * 9)) - 1) < 0.02  # Gaussian, std sqrt(2/N)


@pytest.mark.slow
def test_paper_configuration_forward_shape():
    model = UNet()
    with mg.no_grad():
        y = model(mg.tensor(np.zeros((1, 1, 572, 572), np.float32)))
    assert y.shape == (1, 2, 388, 388)


def test_sizes_and_invalid_input_errors():
    model = UNet()
    valid = [n for n in range(150, 600) if model._trace(n) is not None]
    assert valid[:3] == [188, 204, 220] and 572 in valid and all((n + 4) % 16 == 0 for n in valid)
    assert model.valid_input_size(570) == 572
    with pytest.raises(ValueError, match="570 is not valid.*556 or 572"):
        model.output_size(570)
    small = UNet(depth=2, base_channels=2)
    with pytest.raises(ValueError, match=r"input width 45 .*44 or 48"):
        small(mg.tensor(np.zeros((1, 1, 44, 45), np.float32)))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\), got \(1, 2, 44, 44\)"):
        small(mg.tensor(np.zeros((1, 2, 44, 44), np.float32)))
    same = UNet(depth=2, base_channels=2, padding="same")
    assert same.output_size(40) == 40
    with pytest.raises(ValueError, match="42 is not valid.*40 or 44"):
        same.output_size(42)


@pytest.mark.unet_weight_map
def test_separation_border_and_weight_map_on_two_touching_squares():
    instances = np.zeros((12, 12), np.int64)
    instances[3:9, 1:6] = 1
    instances[3:9, 6:11] = 2  # touches object 1 along columns 5 | 6
    separated = separate_touching(instances)
    assert (separated[3:9, 5] == 0).all() and (separated[3:9, 6] == 0).all()
    assert (separated[3:9, 1:5] == 1).all() and (separated[3:9, 7:11] == 2).all()
    w = weight_map(instances, w0=10.0, sigma=5.0, class_weights=None)
    # a separation pixel at (5, 5): nearest object 1 pixel away (column 4), next 2 away (column 7)
    assert np.isclose(w[5, 5], 1 + 10 * np.exp(-((1 + 2) ** 2) / 50))
    # a far background pixel (0, 0): d1 = dist to (3, 1), d2 = dist to (3, 7)
    d1, d2 = np.hypot(3, 1), np.hypot(3, 7)
    assert np.isclose(w[0, 0], 1 + 10 * np.exp(-((d1 + d2) ** 2) / 50))
    assert (w[separated > 0] == 1).all()  # inside objects: class weight only
    balanced = weight_map(instances, w0=0.0)
    fg = (separated > 0).mean()
    assert np.isclose(balanced[separated > 0][0], 1 / (2 * fg)) and np.isclose(balanced[0, 0], 1 / (2 * (1 - fg)))


def test_weight_map_rejects_bad_input():
    with pytest.raises(ValueError, match=r"2-D integer label image, got shape \(2, 2, 2\)"):
        weight_map(np.zeros((2, 2, 2), int))


def test_metrics_on_a_hand_made_example():
    truth = np.zeros((10, 10), int)
    truth[1:4, 1:4] = 1
    truth[6:9, 6:9] = 2
    pred = np.zeros((10, 10), int)
    pred[1:4, 1:4] = 1  # exact
    pred[6:7, 6:7] = 2  # too small: IoU 1/9
    result = object_f1(pred, truth)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 1, 1) and result["f1"] == 0.5
    scores = evaluate(pred > 0, truth)
    assert np.isclose(scores["iou"], 10 / 18) and np.isclose(scores["dice"], 20 / 28)
    assert np.isclose(scores["pixel_error"], 8 / 100) and scores["object_f1"] == 0.5


@pytest.mark.unet_forward
def test_overlap_tile_equals_whole_image_at_once():
    from unet.inference import predict_probabilities

    model = small_unet()
    image = np.random.default_rng(0).uniform(size=(50, 70))
    tiled = predict_probabilities(model, image, tile=60)  # 20x20 outputs, 3 x 4 tiles
    whole = predict_probabilities(model, image, tile=model.valid_input_size(70 + 40))
    assert tiled.shape == (2, 50, 70)
    np.testing.assert_allclose(tiled, whole, rtol=1e-10, atol=1e-12)


def tiny_config(tmp_path, **kw):
    from unet.train import TrainConfig

    cfg = TrainConfig(data="synthetic", epochs=2, steps_per_epoch=3, batch_size=2, tile=60, depth=2,
                      base_channels=4, lr=3e-3, out=str(tmp_path / "run"))
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_training_is_deterministic_and_loss_falls(tmp_path):
    from unet.train import train

    a = train(tiny_config(tmp_path / "a", epochs=4), progress=False, figures=False, verbose=False)
    b = train(tiny_config(tmp_path / "b", epochs=4), progress=False, figures=False, verbose=False)
    losses = [h["loss"] for h in a["history"]]
    assert losses == [h["loss"] for h in b["history"]]
    assert losses[-1] < losses[0]


def test_ctrl_c_during_a_step_finishes_it_then_checkpoints_and_resume_is_exact(tmp_path, monkeypatch):
    import signal

    import unet.train as train_module

    full = tiny_config(tmp_path / "full")
    train_module.train(full, progress=False, figures=False, verbose=False)

    calls = {"n": 0}
    real_sample_batch = train_module.sample_batch

    def interrupting_sample_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # a real Ctrl-C in the middle of step 5 (the second epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return real_sample_batch(*args, **kwargs)

    cut = tiny_config(tmp_path / "cut")
    monkeypatch.setattr(train_module, "sample_batch", interrupting_sample_batch)
    with pytest.raises(SystemExit) as exit_info:
        train_module.train(cut, progress=False, figures=False, verbose=False)
    assert exit_info.value.code == 130
    ckpt_path = os.path.join(cut.out, "checkpoint.npz")
    assert mg.load(ckpt_path)["step"] == 5  # step 5 was finished and counted, not lost or half-applied
    monkeypatch.setattr(train_module, "sample_batch", real_sample_batch)
    train_module.train(tiny_config(tmp_path / "cut"), resume=ckpt_path, progress=False, figures=False, verbose=False)
    assert_same_checkpoints(os.path.join(full.out, "checkpoint.npz"), ckpt_path, step=6)


def assert_same_checkpoints(path_a, path_b, step):
    a, b = mg.load(path_a), mg.load(path_b)
    assert a["step"] == b["step"] == step
    assert a["model"].keys() == b["model"].keys() and a["optim"].keys() == b["optim"].keys()
    for name in a["model"]:
        np.testing.assert_array_equal(a["model"][name], b["model"][name], err_msg=name)
    for name in a["optim"]:
        np.testing.assert_array_equal(a["optim"][name], b["optim"][name], err_msg=name)
    assert json.loads(str(a["history"])) == json.loads(str(b["history"]))


def test_command_line_end_to_end(tmp_path, capsys):
    from PIL import Image

    from unet.cli import main
    from unet.data import synthetic_cells

    out = tmp_path / "run"
    assert main(["train", "--data", "synthetic", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "1",
                 "--depth", "2", "--base-channels", "2", "--tile", "60", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"iou", "dice", "pixel_error", "object_f1", "history"} <= set(metrics)
    for name in ("checkpoint.npz", "loss.png", "prediction.png"):
        assert (out / name).stat().st_size > 0
    image, _ = synthetic_cells(90, 5, seed=4)
    Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / "cells.png")
    assert main(["predict", "--checkpoint", str(out / "checkpoint.npz"), str(tmp_path / "cells.png"),
                 "--out", str(tmp_path / "pred"), "--quiet"]) == 0
    mask = np.array(Image.open(tmp_path / "pred" / "cells_mask.png"))
    overlay = np.array(Image.open(tmp_path / "pred" / "cells_overlay.png"))
    assert mask.shape == (90, 90) and set(np.unique(mask)) <= {0, 255} and overlay.shape == (90, 90, 3)
    assert main(["train", "--tile", "61", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "--tile 61 is not valid" in capsys.readouterr().err


def test_folder_data_errors_name_the_file(tmp_path):
    from PIL import Image

    from unet.data import load_folder

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.zeros((20, 21), np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(ValueError, match=r"masks/a.png' has shape \(20, 21\).*\(20, 20\)"):
        load_folder(tmp_path)
    Image.fromarray(np.full((20, 20), 3, np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(ValueError, match=r"masks/a.png' holds label 3, but there are only 2 classes"):
        load_folder(tmp_path, mask_kind="class")
    assert load_folder(tmp_path)[0][1].max() == 1  # as instances, label 3 is simply one object


def test_describe_matches_the_paper_and_the_network_itself():
    model = UNet()  # the paper's network
    rows = model.describe(572)
    assert rows[0]["shape_in"] == (1, 572, 572) and rows[0]["shape_out"] == (64, 570, 570)
    assert rows[-1]["layer"] == "head" and rows[-1]["shape_out"] == (2, 388, 388)
    assert [r["crop"] for r in rows if r["crop"]] == [tuple(c) for c in model.skip_crops(572)]
    assert sum(r["parameters"] for r in rows) == model.num_parameters() == 31_030_658
    for before, after in zip(rows, rows[1:]):  # each layer's input is the previous layer's output
        if after["crop"] is None:
            assert after["shape_in"] == before["shape_out"], (before, after)
    # per-layer parameters agree with the modules' own parameters
    by_layer = {}
    for name, p in model.named_parameters():
        by_layer[name.rsplit(".", 1)[0]] = by_layer.get(name.rsplit(".", 1)[0], 0) + p.size
    assert {r["layer"]: r["parameters"] for r in rows if r["parameters"]} == by_layer
    table = model.summary(572)
    assert "total parameters: 31,030,658" in table and "568 -> 392" in table
    assert len(table.splitlines()) == len(rows) + 4


@pytest.mark.parametrize("padding, n", [("valid", 44), ("valid", 60), ("same", 32)])
def test_describe_agrees_with_a_forward_pass(padding, n):
    model = small_unet(padding=padding)
    out = model(mg.tensor(np.zeros((1, 1, n, n))))
    rows = model.describe(n)
    assert rows[-1]["shape_out"] == out.shape[1:]
    pools = [r["shape_out"][1] for r in rows if r["layer"].startswith("pool")]
    assert pools == [n // 2 if padding == "same" else (n - 4) // 2, (pools[0] - (0 if padding == "same" else 4)) // 2]
    with pytest.raises(ValueError, match="not valid"):
        model.describe(n + 1)


# ---- issue 18: weight maps, data and prediction edge cases --------------------------------------
def save_pair(root, stem, image, mask, image_ext=".png", mask_ext=".png"):
    from PIL import Image

    for sub in ("images", "masks"):
        (root / sub).mkdir(exist_ok=True)
    Image.fromarray(image).save(root / "images" / f"{stem}{image_ext}")
    Image.fromarray(mask).save(root / "masks" / f"{stem}{mask_ext}")


def test_folder_data_refuses_ambiguous_names_multipage_tiffs_and_rgb_masks(tmp_path):
    from PIL import Image

    from unet.data import load_folder

    image, mask = np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8)
    save_pair(tmp_path, "a", image, mask)
    Image.fromarray(image).save(tmp_path / "images" / "a.tif")
    with pytest.raises(ValueError, match=r"images/a.png' and '.*images/a.tif' share the name 'a'"):
        load_folder(tmp_path)
    os.remove(tmp_path / "images" / "a.tif")
    Image.fromarray(mask).save(tmp_path / "masks" / "a.tiff")
    with pytest.raises(ValueError, match=r"masks/a.png' and '.*masks/a.tiff' share the name 'a'"):
        load_folder(tmp_path)
    os.remove(tmp_path / "masks" / "a.tiff")

    pages = [Image.fromarray(image), Image.fromarray(image + 1)]
    pages[0].save(tmp_path / "images" / "b.tif", save_all=True, append_images=pages[1:])
    Image.fromarray(mask).save(tmp_path / "masks" / "b.png")
    with pytest.raises(ValueError, match=r"images/b.tif' is a multi-page TIFF \(2 pages\)"):
        load_folder(tmp_path)
    os.remove(tmp_path / "images" / "b.tif")

    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[5:10, 5:10] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "masks" / "a.png")
    with pytest.raises(ValueError, match=r"masks/a.png' is an RGB image"):
        load_folder(tmp_path)
    grey_rgb = np.repeat((mask + 2)[..., None], 3, axis=-1)  # an RGB file with equal channels: read as labels
    Image.fromarray(grey_rgb).save(tmp_path / "masks" / "a.png")
    assert load_folder(tmp_path)[0][1].max() == 1


def test_images_too_small_for_the_training_tile_name_the_minimum(tmp_path):
    from unet.data import split_dataset

    save_pair(tmp_path, "small", np.zeros((30, 30), np.uint8), np.zeros((30, 30), np.uint8))
    with pytest.raises(ValueError, match=r"quadrant of image 'small' is 15x15 pixels.*20x20 output.*minimum"):
        split_dataset(str(tmp_path), min_size=20)
    save_pair(tmp_path, "big", np.zeros((40, 40), np.uint8), np.zeros((40, 40), np.uint8))
    with pytest.raises(ValueError, match=r"image 'small' is 30x30 pixels, smaller than the 32x32"):
        split_dataset(str(tmp_path), min_size=32)


def test_model_and_prediction_argument_errors():
    import time

    from unet.inference import predict_mask
    from unet.model import unet_parameter_count

    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"depth=40 with base_channels=64 would have .* parameters.*use depth <= 6"):
        UNet(depth=40)
    assert time.perf_counter() - start < 1.0  # refused before allocating anything
    model = small_unet()
    assert unet_parameter_count(1, 2, 2, 2) == sum(p.data.size for p in model.parameters())
    with pytest.raises(ValueError, match="must be an integer number of pixels, got 92.5"):
        model.output_size(92.5)
    with pytest.raises(ValueError, match="must be an integer number of pixels"):
        model.check_input_size(True)
    with pytest.raises(ValueError, match=r"the image is empty \(shape \(0, 8\)\)"):
        predict_mask(model, np.zeros((0, 8)))
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        predict_mask(model, np.zeros((8, 8)), batch_size=0)
    assert predict_mask(model, np.zeros((1, 1))).shape == (1, 1)  # tiny but not empty: mirrored context
