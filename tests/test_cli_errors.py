"""The `unet` command line as a careless user drives it: every misuse is one clear line on
stderr and exit status 2 (never a traceback), settings are checked before any training, and
`--resume` restores every setting of the run, refusing by name the ones that cannot change."""
import json
import os

import numpy as np
import pytest

import minigrad as mg
from unet.cli import main

TINY = ["--data", "synthetic", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "1", "--tile", "60",
        "--depth", "2", "--base-channels", "2", "--quiet"]


def fails_with(capsys, argv, *fragments):
    """main(argv) returns 2 and prints one line naming every fragment, with no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.mark.parametrize("flags, fragments", [
    (["--lr", "nan"], ["--lr must be a finite number, got nan"]),
    (["--lr", "inf"], ["--lr must be a finite number"]),
    (["--lr", "-1"], ["--lr must be > 0, got -1"]),
    (["--w0", "nan"], ["--w0 must be a finite number"]),
    (["--w0", "-2"], ["--w0 must be >= 0"]),
    (["--sigma", "nan"], ["--sigma must be a finite number"]),
    (["--sigma", "0"], ["--sigma must be > 0, got 0"]),
    (["--dropout", "1.5"], ["--dropout must be in [0, 1), got 1.5"]),
    (["--epochs", "-1"], ["--epochs must be at least 1, got -1"]),
    (["--batch-size", "0"], ["--batch-size must be at least 1, got 0"]),
    (["--steps-per-epoch", "0"], ["--steps-per-epoch must be at least 1"]),
    (["--seed", "-3"], ["--seed must be >= 0, got -3"]),
    (["--tile", "61"], ["--tile 61 is not valid"]),
    (["--depth", "40"], ["depth=40", "parameters", "use depth <="]),
    (["--data", "no/such/folder"], ["no/such/folder"]),
])
def test_bad_settings_are_refused_before_training(tmp_path, capsys, flags, fragments):
    out = tmp_path / "run"
    fails_with(capsys, ["train", *TINY, "--out", str(out), *flags], *fragments)
    assert not (out / "checkpoint.npz").exists()


def test_output_folder_problems_are_known_before_training(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    file_out = tmp_path / "a-file"
    file_out.write_text("x")
    fails_with(capsys, ["train", *TINY, "--out", str(file_out)], f"--out '{file_out}' is a file, not a folder")
    fails_with(capsys, ["train", *TINY, "--out", str(file_out / "sub")], str(file_out))
    if os.geteuid() != 0:  # root writes anywhere
        read_only = tmp_path / "read-only"
        read_only.mkdir()
        read_only.chmod(0o500)
        try:
            fails_with(capsys, ["train", *TINY, "--out", str(read_only)], "cannot be written to")
        finally:
            read_only.chmod(0o700)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    fails_with(capsys, ["train", *TINY, "--out", str(tmp_path / "full-disk")], "MiB free on its disk")


def test_leftover_temporary_files_are_removed_on_the_next_start(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".tmp-abc123.npz").write_bytes(b"half a checkpoint")
    (out / "keep.txt").write_text("mine")
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "keep.txt", "loss.png", "metrics.json", "prediction.png"]


@pytest.mark.slow
def test_resume_restores_every_setting_and_refuses_changes_by_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a resumed run must not fall back to ./runs/unet
    out = tmp_path / "first"
    assert main(["train", *TINY, "--out", str(out), "--sigma", "3", "--w0", "4", "--lr", "0.001", "--seed", "2",
                 "--optimizer", "sgd"]) == 0
    ckpt = out / "checkpoint.npz"
    started = json.loads(str(mg.load(ckpt)["config"]))
    assert not (tmp_path / "runs").exists()

    fails_with(capsys, ["train", "--resume", str(ckpt), "--lr", "0.01"],
               "--lr cannot be changed on --resume (the run was started with 0.001")
    fails_with(capsys, ["train", "--resume", str(ckpt), "--sigma", "5"], "--sigma cannot be changed")
    fails_with(capsys, ["train", "--resume", str(ckpt), "--mask-kind", "class"], "--mask-kind cannot be changed")
    fails_with(capsys, ["train", "--resume", str(ckpt), "--out", str(tmp_path / "elsewhere")], "--out cannot be changed")
    fails_with(capsys, ["train", "--resume", str(ckpt), "--epochs", "0"], "--epochs must be at least 1")
    fails_with(capsys, ["train", "--resume", str(tmp_path / "none.npz")], "none.npz")
    assert main(["train", "--resume", str(ckpt), "--lr", "0.001", "--quiet"]) == 0  # the same value is fine
    assert mg.load(ckpt)["step"] == 2

    # --epochs N extends the run to N epochs in total, in the checkpoint's folder, with its settings
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--quiet"]) == 0
    resumed = mg.load(ckpt)
    assert resumed["step"] == 4
    assert json.loads(str(resumed["config"])) == dict(started, epochs=2)
    assert [h["epoch"] for h in json.loads(str(resumed["history"]))] == [1, 2]
    assert not (tmp_path / "runs").exists()
    fails_with(capsys, ["train", "--resume", str(ckpt), "--epochs", "1"],
               "--epochs 1 on --resume is fewer than the 2 epoch(s)")


def test_a_checkpoint_with_unknown_settings_is_refused_by_name(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    ckpt = mg.load(out / "checkpoint.npz")
    state = {k: ckpt[k] for k in ckpt}
    state["config"] = json.dumps(dict(json.loads(str(ckpt["config"])), colour="blue"))
    mg.save(state, tmp_path / "odd.npz")
    fails_with(capsys, ["train", "--resume", str(tmp_path / "odd.npz")], "settings this version does not know: colour")


def test_runtime_failures_are_one_line(tmp_path, capsys, monkeypatch):
    import unet.train as train_module

    class OutOfMemoryError(MemoryError):  # CuPy's class, matched by name
        pass

    for error, fragment in [(ImportError("No module named 'matplotlib'"), "No module named 'matplotlib'"),
                            (OutOfMemoryError("out of memory allocating 1,024 bytes"), "out of memory"),
                            (OSError(28, "No space left on device", "ckpt.npz"), "No space left on device 'ckpt.npz'"),
                            (FloatingPointError("the loss became nan at step 3"), "the loss became nan")]:
        def failing(*args, error=error, **kwargs):
            raise error
        monkeypatch.setattr(train_module, "train", failing)
        fails_with(capsys, ["train", *TINY, "--out", str(tmp_path / "run")], fragment)

    def bug(*args, **kwargs):
        assert kwargs["fast_weights"] is True  # the command line computes weight maps the fast way
        raise ZeroDivisionError("a bug keeps its traceback")
    monkeypatch.setattr(train_module, "train", bug)
    with pytest.raises(ZeroDivisionError):
        main(["train", *TINY, "--out", str(tmp_path / "run")])


def test_device_cuda_without_a_gpu_says_why(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(mg.backend, "gpu_available", lambda: False)
    monkeypatch.setattr(mg.backend, "gpu_unavailable_reason", lambda: "the driver is too old", raising=False)
    fails_with(capsys, ["train", *TINY, "--device", "cuda", "--out", str(tmp_path / "r")], "device='cuda' was asked for",
               "the driver is too old", "--device cpu")
    fails_with(capsys, ["predict", "--checkpoint", "x.npz", "--device", "cuda", "--out", str(tmp_path / "p"),
                        __file__], "the driver is too old")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out / "checkpoint.npz"


def test_predict_misuses(tmp_path, capsys, trained):
    from PIL import Image

    ckpt = str(trained)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.full((30, 30), 100, np.uint8)).save(tmp_path / folder / "cells.png")
    Image.fromarray(np.full((30, 30), 100, np.uint8)).save(tmp_path / "a" / "cells.tif")
    a, b, a_tif = (str(tmp_path / p) for p in ("a/cells.png", "b/cells.png", "a/cells.tif"))
    pred = tmp_path / "pred"
    fails_with(capsys, ["predict", "--checkpoint", ckpt, a, b, "--out", str(pred)], a, b, "cells_mask.png")
    fails_with(capsys, ["predict", "--checkpoint", ckpt, a, a_tif, "--out", str(pred)], a, a_tif)
    assert not pred.exists()  # refused before anything was written
    fails_with(capsys, ["predict", "--checkpoint", str(tmp_path / "none.npz"), a, "--out", str(pred)], "none.npz")
    fails_with(capsys, ["predict", "--checkpoint", a, a, "--out", str(pred)], a)  # a PNG is not a checkpoint
    fails_with(capsys, ["predict", "--checkpoint", ckpt, str(tmp_path / "none.png"), "--out", str(pred)], "none.png")
    fails_with(capsys, ["predict", "--checkpoint", ckpt, a, "--tile", "61", "--out", str(pred)], "--tile 61 is not valid")
    (tmp_path / "file").write_text("x")
    fails_with(capsys, ["predict", "--checkpoint", ckpt, a, "--out", str(tmp_path / "file")], "is a file")
    assert main(["predict", "--checkpoint", ckpt, a, a, "--out", str(pred), "--quiet"]) == 0  # one file twice
    assert sorted(os.listdir(pred)) == ["cells_mask.png", "cells_overlay.png"]
