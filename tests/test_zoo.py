"""The family's registry (unet.zoo): models by name, their losses against the references'
formulas, training and checkpoints for every kind, prediction of any image size."""
import json

import os
import signal

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from conftest import assert_close
from unet import zoo
from unet.family import AttentionUNet, TernausNet, UNetPlusPlus
from unet.model import UNet


def test_build_model_by_name():
    assert isinstance(zoo.build_model("unet", depth=2, base_channels=2), UNet)
    pp = zoo.build_model("unet++", base_channels=2, depth=2, deep_supervision=True)
    assert isinstance(pp, UNetPlusPlus) and (pp.in_channels, pp.num_classes) == (1, 1)
    att = zoo.build_model("attention", feature_scale=32)
    assert isinstance(att, AttentionUNet) and (att.in_channels, att.num_classes) == (1, 2)
    assert isinstance(zoo.build_model("ternaus", num_filters=1, pretrained=""), TernausNet)
    with pytest.raises(ValueError, match="model must be one of unet, unet\\+\\+, attention, ternaus, got 'segnet'"):
        zoo.build_model("segnet")
    with pytest.raises(ValueError, match="deep_supervision applies to unet\\+\\+ only, not to model 'attention'"):
        zoo.model_from_config(zoo.train_config("attention", deep_supervision=True))
    with pytest.raises(ValueError, match="loss must be one of .*got 'focal'"):
        zoo.loss_function(zoo.train_config("unet++", loss="focal"))
    assert zoo.loss_function(zoo.train_config("unet")) is None  # the U-Net keeps train_step's own loss
    assert {k: zoo.loss_function(zoo.train_config(k)).name for k in ("unet++", "attention", "ternaus")} == {
        "unet++": "bce-dice", "attention": "dice", "ternaus": "bce-jaccard"}


def test_softmax_dice_loss_is_the_attention_references_soft_dice(torch):
    """The authors' SoftDiceLoss (models/layers/loss.py), restated in PyTorch without its CUDA one-hot."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 5, 6))
    targets = rng.integers(0, 3, (2, 5, 6))

    def reference(x, t, n_classes=3, smooth=0.01):
        b = x.shape[0]
        p = torch.softmax(x, 1).view(b, n_classes, -1)
        one_hot = torch.nn.functional.one_hot(t, n_classes).permute(0, 3, 1, 2).reshape(b, n_classes, -1).double()
        inter = (p * one_hot).sum(2) + smooth
        union = p.sum(2) + one_hot.sum(2) + smooth
        return 1.0 - (2.0 * inter / union).sum() / (b * n_classes)

    x_t = torch.tensor(logits, requires_grad=True)
    expected = reference(x_t, torch.tensor(targets))
    expected.backward()
    x = mg.tensor(logits, requires_grad=True)
    loss = zoo.softmax_dice_loss(x, targets)
    loss.backward()
    assert_close(loss.data, expected, rtol=1e-12, atol=1e-14, what="dice loss")
    assert_close(x.grad, x_t.grad, rtol=1e-10, atol=1e-14, what="its gradient")


def test_binary_losses_of_a_two_class_network_use_the_logit_difference():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 2, 4, 4))
    targets = rng.integers(0, 2, (2, 4, 4))
    weights = rng.random((2, 4, 4)) + 0.5
    z = zoo.foreground_logit(mg.tensor(logits))
    assert_close(z.data, logits[:, 1] - logits[:, 0], rtol=0, atol=0, what="z1 - z0")
    # weighted BCE of the one logit [z] == weighted CE of the two logits [0, z]
    one = mg.tensor(logits[:, 1:] - logits[:, :1])
    two = mg.cat([mg.zeros(2, 1, 4, 4, dtype=np.float64), one], dim=1)
    assert_close(zoo.weighted_cross_entropy(one, targets, weights).data,
                 zoo.weighted_cross_entropy(two, targets, weights).data, rtol=1e-12, atol=0, what="BCE = CE")
    with pytest.raises(ValueError, match="one or two output channels, got 3"):
        zoo.foreground_logit(mg.tensor(rng.standard_normal((1, 3, 2, 2))))


def test_deep_supervision_loss_is_the_mean_over_the_heads():
    loss = zoo.loss_function(zoo.train_config("unet++", loss="dice"))
    rng = np.random.default_rng(2)
    heads = [mg.tensor(rng.standard_normal((1, 1, 4, 4))) for _ in range(3)]
    targets = rng.integers(0, 2, (1, 4, 4))
    mean = np.mean([zoo.softmax_dice_loss(h, targets).item() for h in heads])
    assert loss(heads, targets, None).item() == pytest.approx(mean, rel=1e-12)


def tiny(kind, out, **kw):
    settings = dict(epochs=1, steps_per_epoch=1, batch_size=2, tile=32, out=str(out), loss="dice",
                    base_channels=2, depth=2, feature_scale=32, num_filters=1)
    settings.update(kw)
    return zoo.train_config(kind, **settings)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["unet++", "attention", "ternaus"])
def test_each_kind_trains_checkpoints_and_predicts_any_size(kind, tmp_path):
    from unet.inference import predict_probabilities
    from unet.train import load_checkpoint, model_from_checkpoint, train

    cfg = tiny(kind, tmp_path, deep_supervision=kind == "unet++")
    result = train(cfg, progress=False, figures=False, verbose=False)
    assert np.isfinite(result["history"][0]["loss"]) and 0 <= result["iou"] <= 1
    saved, _ = load_checkpoint(tmp_path / "checkpoint.npz")
    assert saved.model == kind and json.loads(json.dumps(zoo.model_settings(saved))) == zoo.model_settings(cfg)
    model, _ = model_from_checkpoint(tmp_path / "checkpoint.npz")
    assert type(model) is type(zoo.model_from_config(cfg))
    image = np.random.default_rng(3).random((45, 70)).astype(np.float32)
    probs = predict_probabilities(model, image)
    assert probs.shape == (2, 45, 70) and np.allclose(probs.sum(0), 1, atol=1e-6)
    # mirror-padded to the model's multiple, segmented whole, cropped back
    padded = np.pad(image, ((0, model.valid_input_size(45) - 45), (0, model.valid_input_size(70) - 70)),
                    mode="symmetric")
    model.eval()
    with mg.no_grad():
        whole = model.probabilities(mg.tensor(padded[None, None])).numpy()[0]
    np.testing.assert_allclose(probs, whole[:, :45, :70], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="tile applies to the U-Net's overlap-tile prediction"):
        predict_probabilities(model, image, tile=64)


def test_command_line_trains_a_family_member_and_predicts(tmp_path, capsys):
    from PIL import Image

    from unet.cli import main

    out = tmp_path / "run"
    assert main(["train", "--model", "unet++", "--deep-supervision", "--data", "synthetic", "--epochs", "1",
                 "--steps-per-epoch", "1", "--batch-size", "2", "--depth", "2", "--base-channels", "2", "--tile",
                 "32", "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["model"], config["deep_supervision"], config["loss"]) == ("unet++", True, "")
    Image.fromarray((np.random.default_rng(4).random((37, 50)) * 255).astype(np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", "--checkpoint", str(out / "checkpoint.npz"), str(tmp_path / "x.png"),
                 "--out", str(tmp_path / "pred"), "--quiet"]) == 0
    assert np.array(Image.open(tmp_path / "pred" / "x_mask.png")).shape == (37, 50)
    assert main(["train", "--model", "attention", "--tile", "40", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "--tile 40 is not valid: it must be a multiple of 16" in capsys.readouterr().err


def test_single_logit_prediction_and_metrics():
    """A one-logit network's probabilities are [1 - p, p]: argmax is p > 0.5, as for two classes."""
    from unet.inference import predict_mask

    mg.manual_seed(0)
    model = UNetPlusPlus(1, 1, base_channels=2, depth=2)
    image = np.random.default_rng(5).random((20, 20)).astype(np.float32)
    mask = predict_mask(model, image)  # 20 is a multiple of 4: no padding
    model.eval()
    with mg.no_grad():
        logit = model(mg.tensor(image[None, None])).numpy()[0, 0]
    assert mask.shape == (20, 20) and 0 < mask.sum() < mask.size
    np.testing.assert_array_equal(mask, (logit > 0).astype(mask.dtype))
    assert np.array_equal(mask == 1, F.sigmoid(mg.tensor(logit)).numpy() > 0.5)


@pytest.mark.parametrize("loss", zoo.LOSSES)
def test_every_loss_trains_a_step_on_a_device(device, loss):
    """A training step with each loss, one- and two-channel models, on the device: the targets
    and weights copied once, no implicit transfer (fakegpu refuses one)."""
    from unet.train import build, train_step

    rng = np.random.default_rng(6)
    images = rng.random((2, 1, 16, 16)).astype(np.float32)
    targets = rng.integers(0, 2, (2, 16, 16))
    weights = (rng.random((2, 16, 16)) + 0.5).astype(np.float32)
    for kind in ("unet++", "attention"):
        cfg = zoo.train_config(kind, loss=loss, tile=16, base_channels=2, depth=2, feature_scale=32, device=device,
                               deep_supervision=kind == "unet++")
        model, opt = build(cfg)
        before = mg.backend.to_numpy(model.parameters()[0].data).copy()
        value = train_step(model, opt, images, targets, weights, device, 1e-3, zoo.loss_function(cfg))
        assert np.isfinite(value) and value > 0, (kind, loss)
        assert not np.array_equal(mg.backend.to_numpy(model.parameters()[0].data), before)


def test_a_batchnorm_model_resumes_bit_exactly(tmp_path, monkeypatch):
    """UNet++ with BatchNorm and deep supervision: a real SIGINT during step 4 of 6 (the step is
    finished and checkpointed first), then resumed, ends with the weights, running statistics
    and optimiser state of an uninterrupted run."""
    import unet.train as train_module

    def config(out):
        return zoo.train_config(
            "unet++", epochs=3, steps_per_epoch=2, batch_size=2, tile=16, base_channels=2, depth=2,
            deep_supervision=True, out=str(tmp_path / out))

    train_module.train(config("full"), progress=False, figures=False, verbose=False)
    real, calls = train_module.sample_batch, {"n": 0}

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            os.kill(os.getpid(), signal.SIGINT)  # deferred by train() to the end of this step
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "sample_batch", interrupting)
    with pytest.raises(SystemExit):
        train_module.train(config("cut"), progress=False, figures=False, verbose=False)
    monkeypatch.setattr(train_module, "sample_batch", real)
    ckpt = tmp_path / "cut" / "checkpoint.npz"
    assert mg.load(ckpt)["step"] == 4
    train_module.train(config("cut"), resume=str(ckpt), progress=False, figures=False, verbose=False)
    a, b = mg.load(tmp_path / "full" / "checkpoint.npz"), mg.load(ckpt)
    assert a["step"] == b["step"] == 6 and list(a["model"]) == list(b["model"])
    assert any(name.endswith("running_var") for name in a["model"])
    for name in a["model"]:
        np.testing.assert_array_equal(a["model"][name], b["model"][name], err_msg=name)
    for name in a["optim"]:
        np.testing.assert_array_equal(a["optim"][name], b["optim"][name], err_msg=name)


def test_a_checkpoint_does_not_need_ternausnets_vgg11_file(tmp_path):
    cfg = zoo.train_config("ternaus", num_filters=1, pretrained=str(tmp_path / "gone.npz"))
    with pytest.raises(FileNotFoundError, match="gone.npz"):
        zoo.model_from_config(cfg)  # training needs it...
    model = zoo.model_from_config(cfg, load_pretrained=False)  # ...a checkpoint's weights replace it
    assert isinstance(model, TernausNet) and model.pretrained is None
