"""The real ALL Early class, reference split: train, evaluate, and score a colour-threshold baseline.

    python benchmarks/real_early.py [--data DIR] [--config FILE] [--scratch DIR] [--out DIR]

Reproduces the 788/197 split with split_master.py --split-csv into a scratch folder, trains with
the config (its data paths pointed at the scratch copy), evaluates with the project's evaluator,
and in the same run fits the colour threshold "blue minus green > t" on the training images and
scores it on the test images, cells and pixels alike, beside the truth itself without its regions
under the cell size (what a perfect cell outliner would score against the raw truth). Prints the
cell table and the pixel table and writes them as JSON and Markdown; also draws the
per-image Dice histogram and the five worst test images (masks only in asset/; with the
original images in the scratch folder, since dataset images are never copied into the project).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import DEFAULT_DATA, ROOT, read_summary, reference_split, run, write_config

from allseg.evaluate.cell_scoring import score_cells, summarize_cells  # noqa: E402
from allseg.cells.instances import cell_settings  # noqa: E402
from allseg.core.config import load_config  # noqa: E402
from allseg.data.images import read_mask, read_rgb, write_png  # noqa: E402  (common puts the project on sys.path)
from allseg.data.pairing import find_pairs  # noqa: E402
from allseg.cells.instances import remove_small_components  # noqa: E402
from allseg.evaluate.scoring import score_image, summarize  # noqa: E402
from allseg.core.files import replace_atomically, write_text  # noqa: E402


def blue_minus_green(rgb):
    return rgb[..., 2].astype(np.int16) - rgb[..., 1].astype(np.int16)


def scored(named_preds_truths, c):
    """Pixel summary with the cell summary under "cells", as the evaluator writes them."""
    items = list(named_preds_truths)
    summary = summarize([score_image(n, p, t) for n, p, t in items])
    summary["cells"] = summarize_cells(
        [score_cells(p, t, *cell_settings(c))[0] for _, p, t in items],
        *cell_settings(c))
    return summary


def colour_threshold_baseline(all_dir, c):
    """Chooses t on the training images (best mean per-image Dice), then scores the test images."""
    def load(split):
        pairs = find_pairs(all_dir / split / "original", all_dir / split / "segmented", "Early")
        return [(p.image.name, blue_minus_green(read_rgb(p.image)), read_mask(p.mask)) for p in pairs]

    train = load("train")
    best_t, best = None, -1.0
    for t in range(0, 160, 5):
        score = np.mean([score_image(n, d > t, m)["dice"] for n, d, m in train])
        if score > best:
            best_t, best = t, score
    test = load("test")
    return best_t, scored(((n, d > best_t, m) for n, d, m in test), c), test


def truth_without_specks(test, c):
    """The truth scored against itself with its regions under cell_min_area removed."""
    return scored(((n, remove_small_components(m, c.cell_min_area), m) for n, _, m in test), c)


CELL_KEYS = ("f1", "precision", "recall", "panoptic_quality", "count_mae", "count_bias", "dice",
             "nsd_2px", "hd95")


def table_row(method, s, seconds=None):
    return {"method": method, "mean_dice": s["mean_dice"], "median_dice": s["median_dice"],
            "p10_dice": s["p10_dice"], "pooled_dice": s["pooled_dice"], "mean_iou": s["mean_iou"],
            "pixel_accuracy": s["pixel_accuracy"],
            "cells": {k: s["cells"][k] for k in CELL_KEYS + ("n_true", "n_pred", "tp", "fp", "fn")},
            "train_minutes": None if seconds is None else seconds / 60}


def markdown(rows):
    lines = ["| method | cell F1 | precision | recall | panoptic quality | count error (cells/image) "
             "| count bias | Dice, cells only | NSD 2 px, cells only | HD95 px, cells only "
             "| mean Dice, raw truth | training |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["cells"]
        minutes = "-" if r["train_minutes"] is None else f"{r['train_minutes']:.1f} min"
        lines.append(f"| {r['method']} | {c['f1']:.3f} | {c['precision']:.3f} | {c['recall']:.3f} | "
                     f"{c['panoptic_quality']:.3f} | {c['count_mae']:.2f} | {c['count_bias']:+.2f} | "
                     f"{c['dice']:.3f} | {c['nsd_2px']:.3f} | {c['hd95']:.2f} | {r['mean_dice']:.3f} "
                     f"| {minutes} |")
    lines += ["", "| method | mean Dice | median Dice | 10th pct Dice | pooled Dice | mean IoU | "
              "pixel acc. | training |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        minutes = "-" if r["train_minutes"] is None else f"{r['train_minutes']:.1f} min"
        lines.append(f"| {r['method']} | {r['mean_dice']:.3f} | {r['median_dice']:.3f} | "
                     f"{r['p10_dice']:.3f} | {r['pooled_dice']:.3f} | {r['mean_iou']:.3f} | "
                     f"{r['pixel_accuracy']:.4f} | {minutes} |")
    return "\n".join(lines)


def histogram(per_image, path, title):
    from allseg.train.plots import plt  # pyplot on the Agg backend: files, no display
    dices = [r["dice"] for r in per_image]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax.hist(dices, bins=np.linspace(min(0.5, min(dices)), 1.0, 41), color="#6a4c93")
    ax.axvline(np.mean(dices), color="k", linestyle="--", label=f"mean {np.mean(dices):.3f}")
    ax.set(xlabel="per-image Dice", ylabel="test images", title=title)
    ax.legend()
    fig.tight_layout()
    with replace_atomically(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def error_map(truth, pred):
    """White: found; red: missed (false negative); cyan: false positive."""
    out = np.zeros(truth.shape + (3,), np.uint8)
    out[truth & pred] = (255, 255, 255)
    out[truth & ~pred] = (255, 40, 40)
    out[~truth & pred] = (0, 220, 255)
    return out


def worst_montage(config, all_dir, per_image, path, private_path, count=5):
    """truth | prediction | errors for the `count` lowest-Dice test images. Only masks go to
    `path` (committed with the README: no dataset image is copied into the project); the version
    with each original image in front goes to `private_path`, in the scratch folder."""
    import cv2

    from allseg.infer.predict import predict_masks
    from allseg.model.unet import load_trained_model

    cfg = load_config(config)
    model = load_trained_model(cfg)
    worst = sorted(per_image, key=lambda r: r["dice"])[:count]
    public, private = [], []
    gray = lambda m: cv2.cvtColor(m.astype(np.uint8) * 255, cv2.COLOR_GRAY2RGB)  # noqa: E731
    for r in worst:
        rgb = read_rgb(all_dir / "test" / "original" / "Early" / r["file"])
        truth = read_mask(all_dir / "test" / "segmented" / "Early" / r["file"])
        pred = predict_masks(model, [rgb], cfg.model)[0]
        row = np.concatenate([gray(truth), gray(pred), error_map(truth, pred)], axis=1)
        cv2.putText(row, f"{r['file']}  Dice {r['dice']:.3f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (255, 255, 0), 1, cv2.LINE_AA)
        public.append(row)
        private.append(np.concatenate([rgb, row], axis=1))
    for rows, target in ((public, path), (private, private_path)):
        write_png(target, np.concatenate(rows, axis=0))
    return [r["file"] for r in worst]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "early_cpu.config")
    parser.add_argument("--scratch", type=Path, default=ROOT / "bench_runs" / "real_early")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--assets", type=Path, default=ROOT / "asset")
    parser.add_argument("--reuse-run", type=Path,
                        help="evaluate the model of this earlier run again (e.g. after changing "
                             "prediction settings chosen on validation) instead of training")
    args = parser.parse_args()
    if not (args.data / "split.csv").is_file():
        raise SystemExit(f"{args.data}: no split.csv there; pass --data with the real Early class")

    all_dir = reference_split(args.data, args.scratch)
    run_dir = args.reuse_run or args.scratch / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    config = write_config(args.config, run_dir / "config", run_dir, all_dir)
    if args.reuse_run:
        train_seconds = float((run_dir / "train_seconds.txt").read_text())
    else:
        train_seconds = run("TensorflowUNetALLTrainer.py", config)
        write_text(run_dir / "train_seconds.txt", f"{train_seconds:.1f}\n")
    run("TensorflowUNetALLEvaluator.py", config)
    unet = read_summary(run_dir / "eval")

    c = load_config(config).infer
    threshold, baseline, test = colour_threshold_baseline(all_dir, c)
    rows = [table_row(f"colour threshold (blue - green > {threshold}, fitted on train)", baseline),
            table_row(f"U-Net ({args.config.name})", unet, train_seconds),
            table_row(f"the truth without its regions < {c.cell_min_area} px (a perfect cell "
                      "outliner)", truth_without_specks(test, c))]
    print()
    print(markdown(rows))

    args.out.mkdir(parents=True, exist_ok=True)
    args.assets.mkdir(parents=True, exist_ok=True)
    histogram(unet["per_image"], args.assets / "real_early_dice_histogram.png",
              f"U-Net ({args.config.name}), {unet['num_images']} test images")
    worst = worst_montage(config, all_dir, unet["per_image"], args.assets / "real_early_worst5.png",
                          run_dir / "worst5_with_images.png")
    result = {"config": str(args.config.relative_to(ROOT)) if args.config.is_relative_to(ROOT)
              else str(args.config), "rows": rows, "worst5": worst,
              "unet_summary": {k: v for k, v in unet.items() if k != "per_image"}}
    write_text(args.out / "real_early.json", json.dumps(result, indent=2) + "\n")
    write_text(args.out / "real_early.md", markdown(rows) + "\n")
    print(f"Wrote {args.out / 'real_early.json'}, {args.out / 'real_early.md'}, "
          f"{args.assets / 'real_early_dice_histogram.png'}, {args.assets / 'real_early_worst5.png'}")


if __name__ == "__main__":
    main()
