"""The real ALL Early class, reference split: train, evaluate, score a colour-threshold baseline.

Reproduces the 788/197 split published results use in a scratch folder, trains the config there
and evaluates it with the project's evaluator, beside the colour threshold "blue minus green > t"
(t fitted on the training images) and the truth without its regions under the cell size (a
perfect cell outliner). Writes the cell and pixel tables (real_early.{json,md}), the per-image
Dice histogram and the five worst test images (masks only in asset/; with the smears in scratch).
"""
import json

import numpy as np

from common import (ROOT, as_rgb, blue_minus_green, caption, cell_summary, parse, parser, run,
                    table_lines, train_or_reuse, write_pictures, write_results)

from allseg.cells.instances import remove_small_components  # noqa: E402  (common: sys.path)
from allseg.cells.scoring import pixel_scores, summarize  # noqa: E402
from allseg.core.config import load_config  # noqa: E402
from allseg.core.files import replace_atomically  # noqa: E402
from allseg.data.images import read_mask, read_rgb  # noqa: E402
from allseg.data.pairing import find_pairs  # noqa: E402

# the tables' columns and their formats (the rows also keep each cell summary's counts)
PIXELS = {"mean_dice": ".3f", "median_dice": ".3f", "p10_dice": ".3f", "pooled_dice": ".3f",
          "mean_iou": ".3f", "pixel_accuracy": ".4f"}
CELLS = {"f1": ".3f", "precision": ".3f", "recall": ".3f", "panoptic_quality": ".3f",
         "count_mae": ".2f", "count_bias": "+.2f", "dice": ".3f", "nsd_2px": ".3f", "hd95": ".2f"}


def scored(items, c):
    """Pixel summary with the cell summary under "cells", as the evaluator writes them."""
    items = list(items)
    summary = summarize([pixel_scores(n, p, t) for n, p, t in items])
    summary["cells"] = cell_summary(((p, t) for _, p, t in items), c)
    return summary


def colour_threshold_baseline(all_dir, c):
    """Chooses t on the training images (best mean per-image Dice), then scores the test images."""
    def load(split):
        pairs = find_pairs(all_dir / split / "original", all_dir / split / "segmented", "Early")
        return [(p.image.name, blue_minus_green(read_rgb(p.image)), read_mask(p.mask))
                for p in pairs]

    train = load("train")
    best_t = max(range(0, 160, 5), key=lambda t: (np.mean(
        [pixel_scores(n, d > t, m)["dice"] for n, d, m in train]), -t))  # ties: the lowest t
    test = load("test")
    return best_t, scored(((n, d > best_t, m) for n, d, m in test), c), test


def table_row(method, s, seconds=None):
    return {"method": method, **{k: s[k] for k in PIXELS},
            "cells": {k: s["cells"][k] for k in (*CELLS, "n_true", "n_pred", "tp", "fp", "fn")},
            "train_minutes": None if seconds is None else seconds / 60}


def markdown(rows):
    def minutes(r):
        return "-" if r["train_minutes"] is None else f"{r['train_minutes']:.1f} min"

    cells = table_lines(
        ("method", "cell F1", "precision", "recall", "panoptic quality",
         "count error (cells/image)", "count bias", "Dice, cells only", "NSD 2 px, cells only",
         "HD95 px, cells only", "mean Dice, raw truth", "training"),
        [(r["method"], *(format(r["cells"][k], f) for k, f in CELLS.items()),
          format(r["mean_dice"], ".3f"), minutes(r)) for r in rows])
    pixels = table_lines(("method", "mean Dice", "median Dice", "10th pct Dice", "pooled Dice",
                          "mean IoU", "pixel acc.", "training"),
                         [(r["method"], *(format(r[k], f) for k, f in PIXELS.items()), minutes(r))
                          for r in rows])
    return "\n".join(cells + [""] + pixels)


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


def worst_montage(config, all_dir, per_image, path, private_path, count=5):
    """truth | prediction | errors (white found, red missed, cyan false) for the `count`
    lowest-Dice test images."""
    from allseg.infer.predict import predict_masks
    from allseg.model.unet import load_trained_model

    cfg = load_config(config)
    model = load_trained_model(cfg)
    worst = sorted(per_image, key=lambda r: r["dice"])[:count]
    pictures = []
    for r in worst:
        rgb = read_rgb(all_dir / "test" / "original" / "Early" / r["file"])
        truth = read_mask(all_dir / "test" / "segmented" / "Early" / r["file"])
        pred = predict_masks(model, [rgb], cfg.model)[0]
        errors = np.zeros(truth.shape + (3,), np.uint8)
        errors[truth & pred], errors[truth & ~pred] = (255, 255, 255), (255, 40, 40)
        errors[~truth & pred] = (0, 220, 255)
        row = caption(np.concatenate([as_rgb(truth), as_rgb(pred), errors], axis=1),
                      f"{r['file']}  Dice {r['dice']:.3f}")
        pictures.append((rgb, row))
    write_pictures(pictures, path, private_path)
    return [r["file"] for r in worst]


def main():
    args = parse(parser(__doc__, scratch="real_early", config="early_cpu.config"))
    all_dir, run_dir, config, train_seconds = train_or_reuse(args)
    run("TensorflowUNetALLEvaluator.py", config)
    unet = json.loads((run_dir / "eval" / "summary.json").read_text())

    c = load_config(config).infer
    threshold, baseline, test = colour_threshold_baseline(all_dir, c)
    perfect = scored(((n, remove_small_components(m, c.cell_min_area), m) for n, _, m in test), c)
    rows = [table_row(f"colour threshold (blue - green > {threshold}, fitted on train)", baseline),
            table_row(f"U-Net ({args.config.name})", unet, train_seconds),
            table_row(f"the truth without its regions < {c.cell_min_area} px (a perfect cell "
                      "outliner)", perfect)]
    print("\n" + markdown(rows))

    histogram(unet["per_image"], args.assets / "real_early_dice_histogram.png",
              f"U-Net ({args.config.name}), {unet['num_images']} test images")
    worst = worst_montage(config, all_dir, unet["per_image"], args.assets / "real_early_worst5.png",
                          run_dir / "worst5_with_images.png")
    name = args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config
    result = {"config": str(name), "rows": rows, "worst5": worst,
              "unet_summary": {k: v for k, v in unet.items() if k != "per_image"}}
    write_results(args.out / "real_early", result, markdown(rows))
    print(f"Wrote {args.out / 'real_early.json'}, {args.out / 'real_early.md'}, "
          f"{args.assets / 'real_early_dice_histogram.png'}, "
          f"{args.assets / 'real_early_worst5.png'}")


if __name__ == "__main__":
    main()
