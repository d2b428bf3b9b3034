"""``unet compare``: the U-Net family trained side by side on the four quadrant folds of the
nuclei image (three quadrants train, the fourth is held out, each in turn).

Every run is ``unet train --model KIND --fold K`` at that model's defaults, with the number of
epochs scaled by ``schedule`` (the comparison's shorter schedule, stated in its output). Each
run's ``metrics.json`` is kept under ``OUT/KIND/foldK``; a run whose metrics file holds the same
configuration is not trained again, so an interrupted comparison continues where it stopped.

Writes ``OUT/compare.csv`` (one row per run), ``OUT/compare.md`` (the table: parameters, step
time, held-out IoU, Dice and object F1 as mean +- sample standard deviation over the folds, with
their range) and ``OUT/compare.png`` (the scores per model with every fold drawn, and IoU against
step time).
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

from .data import QUADRANTS
from .io import save_figure, write_json

FAMILY = ("unet", "unet++", "attention", "ternaus")
SCORES = ("iou", "dice", "object_f1")


@dataclass
class CompareConfig:
    models: tuple = FAMILY
    folds: tuple = (0, 1, 2, 3)
    schedule: float = 0.5  # fraction of each model's default epochs (the comparison's shorter schedule)
    seed: int = 0
    device: str = "cpu"
    out: str = "runs/compare"
    train: bool = True  # False: tabulate the finished runs only (a partial comparison says what is missing)

    def check(self, known=FAMILY):
        for kind in self.models:
            if kind not in known:
                raise ValueError(f"compare: models must be among {', '.join(known)}, got {kind!r}")
        if not self.models:
            raise ValueError("compare: models must name at least one model, got none")
        for fold in self.folds:
            if fold not in range(len(QUADRANTS)):
                raise ValueError(f"compare: folds must be among 0..{len(QUADRANTS) - 1}, got {fold!r}")
        if not self.folds:
            raise ValueError("compare: folds must name at least one fold, got none")
        if not 0 < self.schedule <= 1:
            raise ValueError(f"compare: schedule must be in (0, 1] (a fraction of the default epochs), "
                             f"got {self.schedule}")


def default_train_config(kind: str):
    """``unet train --model KIND``'s configuration with no other argument."""
    from .zoo import train_config

    return train_config(kind)


def run_config(kind: str, fold: int, cfg: CompareConfig, defaults=default_train_config):
    """The TrainConfig of one run: the model's ``unet train`` defaults, the comparison's schedule."""
    run = defaults(kind)
    run.epochs = max(1, round(run.epochs * cfg.schedule))
    run.fold, run.seed, run.device = fold, cfg.seed, cfg.device
    run.out = os.path.join(cfg.out, kind, f"fold{fold}")
    return run


def _finished(run) -> dict | None:
    """The metrics of a finished run with exactly this configuration, else None."""
    path = os.path.join(run.out, "metrics.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        result = json.load(f)
    return result if result.get("config") == asdict(run) else None


def summarize(rows: list) -> list:
    """One dict per model: parameters, step time and each score's mean, sample std, min and max."""
    table = []
    for kind in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == kind]
        entry = dict(model=kind, parameters=mine[0]["parameters"], folds=len(mine),
                     step_seconds=float(np.median([r["step_seconds"] for r in mine])),
                     train_seconds=float(np.mean([r["seconds"] for r in mine])))
        for key in SCORES:
            values = np.array([r[key] for r in mine], dtype=np.float64)
            entry[key] = dict(mean=float(values.mean()), std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                              min=float(values.min()), max=float(values.max()))
        table.append(entry)
    return table


def markdown(table: list, header: str = "") -> str:
    cells = lambda s: f"{s['mean']:.3f} ± {s['std']:.3f} ({s['min']:.3f}-{s['max']:.3f})"  # noqa: E731
    lines = [header] if header else []
    lines += ["| model | parameters | folds | step (s) | training (s/fold) | IoU | Dice | object F1 |",
              "|---|---:|---:|---:|---:|---|---|---|"]
    for e in table:
        lines.append(f"| {e['model']} | {e['parameters']:,} | {e['folds']} | {e['step_seconds']:.2f} | "
                     f"{e['train_seconds']:.0f} | "
                     f"{cells(e['iou'])} | {cells(e['dice'])} | {cells(e['object_f1'])} |")
    lines.append("")
    lines.append("Scores: mean ± sample standard deviation over the folds (range in brackets), each fold's "
                 "held-out quadrant segmented whole. Step: median seconds of one training step (forward, "
                 "backward, update).")
    return "\n".join(lines)


def _csv_text(rows: list) -> str:
    keys = ["model", "fold", "held_out", "parameters", "epochs", "steps", "step_seconds", "seconds",
            "iou", "dice", "object_f1", "pixel_error"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def figure(rows: list, table: list, path: str, title: str = ""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(SCORES)
    for j, key in enumerate(SCORES):
        xs = np.arange(len(table)) + (j - (len(SCORES) - 1) / 2) * width
        ax.bar(xs, [e[key]["mean"] for e in table], width, yerr=[e[key]["std"] for e in table], capsize=3,
               label={"iou": "IoU", "dice": "Dice", "object_f1": "object F1"}[key], alpha=0.8)
        for x, e in zip(xs, table):  # every fold, so four numbers are not hidden behind one bar
            folds = [r[key] for r in rows if r["model"] == e["model"]]
            ax.plot([x] * len(folds), folds, "k.", ms=4)
    ax.set_xticks(np.arange(len(table)), [e["model"] for e in table])
    low = min(r[k] for r in rows for k in SCORES)
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("held-out score (dots: folds)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(SCORES), frameon=False)
    for e in table:
        ax2.errorbar(e["step_seconds"], e["iou"]["mean"], yerr=e["iou"]["std"], fmt="o", capsize=3)
        ax2.annotate(f"{e['model']}\n{e['parameters'] / 1e6:.2f} M", (e["step_seconds"], e["iou"]["mean"]),
                     textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax2.set_xlabel("training step (s)")
    ax2.set_ylabel("held-out IoU")
    ax2.set_title("quality against cost")
    if title:
        fig.suptitle(title, y=1.05)
    save_figure(fig, path)
    plt.close(fig)


def compare(cfg: CompareConfig, progress: bool = True, defaults=default_train_config) -> dict:
    """Train every (model, fold) pair not yet done; write the table, the CSV and the figure.

    ``defaults(kind)`` gives a model's TrainConfig (``unet train``'s defaults for it)."""
    from .train import build, train

    cfg.check()
    runs = [(kind, fold) for kind in cfg.models for fold in cfg.folds]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(runs), desc="unet compare", unit="run", dynamic_ncols=True)
    rows, parameters, missing, t0 = [], {}, [], time.time()
    try:
        for kind, fold in runs:
            run = run_config(kind, fold, cfg, defaults)
            if bar is not None:
                bar.set_postfix(model=kind, held_out=QUADRANTS[fold])
            result = _finished(run)
            if result is None and not cfg.train:
                missing.append(f"{kind} fold {fold}")
                if bar is not None:
                    bar.update(1)
                continue
            if result is None:
                result = train(run, progress=False, figures=False, verbose=False)
            if kind not in parameters:
                parameters[kind] = build(run)[0].num_parameters()
            rows.append(dict(model=kind, fold=fold, held_out=QUADRANTS[fold], parameters=parameters[kind],
                             epochs=run.epochs, steps=result["steps"], step_seconds=result["step_seconds"],
                             seconds=result["seconds"], **{k: result[k] for k in SCORES + ("pixel_error",)}))
            if bar is not None:
                bar.write(f"{kind:>9} fold {fold} ({QUADRANTS[fold]} held out): iou {result['iou']:.3f}  "
                          f"dice {result['dice']:.3f}  object F1 {result['object_f1']:.3f}  "
                          f"({result['seconds']:.0f} s)")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if not rows:
        raise ValueError(f"compare: no finished run to tabulate in '{cfg.out}' (missing: {', '.join(missing)})")
    table = summarize(rows)
    header = (f"U-Net family on the nuclei image, held-out quadrant(s) {', '.join(QUADRANTS[f] for f in cfg.folds)}; "
              f"each model's `unet train` defaults at {cfg.schedule:g} x their epochs (seed {cfg.seed}, "
              f"{cfg.device}; {platform.machine()}, {os.cpu_count()} CPU(s); {time.time() - t0:.0f} s this session)."
              + (f" Not run (absent from the table): {', '.join(missing)}." if missing else "") + "\n")
    os.makedirs(cfg.out, exist_ok=True)
    from minigrad.serialization import atomic_write

    text = markdown(table, header)
    atomic_write(os.path.join(cfg.out, "compare.md"), lambda f: f.write((text + "\n").encode()))
    atomic_write(os.path.join(cfg.out, "compare.csv"), lambda f: f.write(_csv_text(rows).encode()))
    write_json(os.path.join(cfg.out, "compare.json"), dict(config=asdict(cfg), runs=rows, table=table))
    figure(rows, table, os.path.join(cfg.out, "compare.png"),
           f"held-out quadrant folds, {cfg.schedule:g} x default epochs")
    return dict(rows=rows, table=table, markdown=text, missing=missing)
