"""Fine-tuning on another lab's outlines: a learning curve on the 100 CellaVision crops (k drawn
with seed 0 to train on, the rest scored, flips averaged and not) from the shipped model (default),
from scratch, the naive way (200 steps of 4 at the crops' own size) and the shipped model as is."""
import json
import shutil

import keras
import numpy as np
from common import DATA, parse, parser, write_results

import allseg.core.quiet_start  # noqa: F401
from allseg.data.lab_samples import read_samples
from allseg.evaluate.fine_tune import held_out_scores
from allseg.infer.scale import resampling
from allseg.train.fine_tune import (FineTuneSettings, chosen_scale, fine_tune_config,
                                    fine_tune_model, model_file, template_config)
from allseg.train.plots import plt  # pyplot on the Agg backend: files, no display

NAIVE = {"epochs": 8, "colour": 0.0, "cosine": False, "scale": 1.0, "crop": None}  # Adam 1e-3
ARMS = {"from shipped (default)": ("pretrained", {}), "from scratch": ("none", {}),
        "naive, from shipped": ("pretrained", NAIVE), "naive, from scratch": ("none", NAIVE)}
SHIPPED = model_file("pretrained")
COLUMNS = ("whole_cell_dice", "nucleus_dice", "found", "count_error", "nc_error",
           "train_seconds", "flips_whole_cell_dice", "flips_nucleus_dice", "flips_nc_error")


def zero_shot(test, images):
    cfg, model = template_config(SHIPPED), keras.models.load_model(SHIPPED, compile=False)
    scale, _ = resampling(cfg, model, [images / s.name for s in test])
    return {**held_out_scores(model, cfg, test, scale), "scale": scale, "train_seconds": 0.0}


def fine_tune(start, changes, train, test, scratch):
    """One arm trained as the trainer's --images form trains, in a fresh scratch folder."""
    start, settings = model_file(start), FineTuneSettings(**changes)
    shutil.rmtree(scratch, ignore_errors=True)
    scale, _ = chosen_scale(settings, train)
    cfg = fine_tune_config(template_config(start), settings, 2, train, scale, scratch)
    result = fine_tune_model(start, cfg, train, settings, scale)
    scores = {}
    for flips in (True, False):  # each model predicted with and without its flips averaged
        cfg.model.tta_flips = flips  # this run's own config, made above
        scores.update({("flips_" if flips else "") + k: v for k, v in held_out_scores(
            result["model"], cfg, test, scale).items() if not (flips and k == "per_image")})
    return {**scores, "train_seconds": result["seconds"]}


def plot(rows, path):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]  # scored as the infer script runs each
        for ax, column in zip(axes, COLUMNS[:2]):
            ax.plot([r["k"] for r in mine], [r.get("flips_" + column, r.get(column, np.nan))
                                             for r in mine], "o-", label=arm)
            ax.set(xticks=[5, 10, 20, 40], xlabel="crops trained on (k)", ylabel=column)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main():
    p = parser(__doc__, data=DATA / "wbc-cellavision", scratch="fine_tune")
    p.add_argument("--k", type=int, nargs="+", default=[5, 10, 20, 40])
    p.add_argument("--naive-k", type=int, nargs="*", default=[5, 20])
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    p.add_argument("--settings", type=json.loads, default={}, help='e.g. {"crop": 192}')
    args = parse(p)
    samples, rows = read_samples(args.data / "images", args.data / "masks"), []
    for k in args.k:
        order = np.random.default_rng(0).permutation(len(samples))
        train, test = ([samples[i] for i in sorted(part)] for part in (order[:k], order[k:]))
        rows.append({"k": k, "arm": "shipped, zero-shot", **zero_shot(test, args.data / "images")})
        for arm, (start, changes) in ARMS.items():
            if arm in args.arms and (changes is not NAIVE or k in args.naive_k):
                rows.append({"k": k, "arm": arm, **fine_tune(
                    start, {**changes, **args.settings}, train, test, args.scratch / "model")})
                print(json.dumps({c: v for c, v in rows[-1].items() if c != "per_image"}),
                      flush=True)
    text = ["| k | start | " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " |",
            "|---|---|" + "---|" * len(COLUMNS)] + [
        f"| {r['k']} | {r['arm']} | " + " | ".join(f"{r.get(c, np.nan):.3f}" for c in COLUMNS)
        + " |" for r in rows]
    for row in (r for r in rows if r["arm"] != "from shipped (default)"):
        row.pop("per_image")  # each held-out crop's figures for the command's model only
    write_results(args.out / "fine_tune", rows, "\n".join(text))
    plot(rows, args.assets / "fine_tune_learning_curve.png")
    print("\n".join(text))


if __name__ == "__main__":
    main()
