"""The visible cells a model misses, by kind, with a gallery to judge them by eye.

    python benchmarks/visible_misses.py --run RUN [--category Benign] [--split-depth D] [--out DIR]

RUN is a benchmarks/real_all.py run folder (its `config` and `models/best_model.keras`). On that
run's validation images of one category, every visible cell (the stain rule's outline) that no
predicted cell matches at IoU >= 0.5 is sorted by how the prediction covers it:
- "none": under 10% of it predicted;
- "inside a larger predicted cell": one predicted cell covers most of it but is over twice its
  size (the rule may outline part of a pale cell the model outlines whole, or the model may join
  the cell to a neighbour: the gallery tells which);
- "split": two or more predicted cells cover a fifth of it each;
- "partly": the rest.
Writes visible_misses_<category>_depth<D>.json to --out (each miss, and the tally) and a gallery
PNG of the same name to RUN: per miss, in the JSON's order, the smear crop and the same crop with
the rule's outline (red) and the model's cells (cyan). The gallery shows the dataset's images, so
it stays in the (uncommitted) run folder.
"""
import argparse
import json
from pathlib import Path

import numpy as np
from skimage import segmentation

from common import ROOT
from real_all import load_items, predict, validation_pairs

from allseg.cell_scoring import score_cells  # noqa: E402
from allseg.cells import cell_settings  # noqa: E402
from allseg.config import load_config  # noqa: E402

CROP = 80  # px around a missed cell's centre: a cell and its neighbours
ZOOM = 2


def miss_kind(cell, pred_labels):
    """How the predicted cells cover one missed true cell (a boolean mask)."""
    area = int(cell.sum())
    ids, overlap = np.unique(pred_labels[cell], return_counts=True)
    keep = ids > 0
    ids, overlap = ids[keep], overlap[keep]
    if overlap.sum() < 0.1 * area:
        return "none"
    if np.count_nonzero(overlap >= 0.2 * area) >= 2:
        return "split"
    top = ids[np.argmax(overlap)]
    if overlap.max() >= 0.5 * area and np.count_nonzero(pred_labels == top) > 2 * area:
        return "inside a larger predicted cell"
    return "partly"


def missed_cells(pred, visible, settings):
    """(true label image, predicted label image, [(label, kind)]) of the unmatched visible cells."""
    _, true_labels, pred_labels, match = score_cells(pred, visible, *settings)
    matched = {t for t, _, _ in match["pairs"]}
    misses = [(label, miss_kind(true_labels == label, pred_labels))
              for label in range(1, int(true_labels.max()) + 1) if label not in matched]
    return true_labels, pred_labels, misses


def crop_view(rgb, cell, pred_labels):
    """The smear around one cell, plain and with the rule's outline and the model's cells."""
    import cv2

    ys, xs = np.nonzero(cell)
    cy, cx = int(ys.mean()), int(xs.mean())
    h, w = cell.shape
    y0, x0 = max(0, min(h - CROP, cy - CROP // 2)), max(0, min(w - CROP, cx - CROP // 2))
    window = np.s_[y0:y0 + CROP, x0:x0 + CROP]
    plain = rgb[window].copy()
    marked = plain.copy()
    # each predicted cell's own outline, so that a cell the model splits shows its dividing line
    marked[segmentation.find_boundaries(pred_labels[window], mode="inner")] = (0, 220, 255)
    marked[segmentation.find_boundaries(cell[window], mode="inner")] = (255, 0, 0)
    both = np.concatenate([plain, marked], axis=1)
    return cv2.resize(both, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)


def gallery(tiles, path, per_row=4):
    import cv2

    blank = np.zeros_like(tiles[0])
    tiles = tiles + [blank] * (-len(tiles) % per_row)
    rows = [np.concatenate(tiles[i:i + per_row], axis=1) for i in range(0, len(tiles), per_row)]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--category", default="Benign")
    parser.add_argument("--split-depth", type=float, default=None,
                        help="override the config's [infer] cell_split_depth")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    import allseg.quiet_start  # noqa: F401
    import keras

    import allseg.losses_metrics  # noqa: F401  (registers the loss, so saved models load)

    cfg = load_config(args.run / "config")
    min_area, depth, hole_px = cell_settings(cfg.infer)
    depth = depth if args.split_depth is None else args.split_depth
    pairs = [p for p in validation_pairs(cfg) if p.category == args.category]
    if not pairs:
        raise SystemExit(f"no {args.category} pairs among the validation images of {args.run}")
    items = load_items(pairs)
    model = keras.models.load_model(args.run / "models" / "best_model.keras")
    preds = predict(model, items, cfg.model)

    misses, tiles, visible_total = [], [], 0
    for (pair, rgb, _, visible, _), pred in zip(items, preds):
        true_labels, pred_labels, found = missed_cells(pred, visible, (min_area, depth, hole_px))
        visible_total += int(true_labels.max())
        for label, kind in found:
            cell = true_labels == label
            misses.append({"image": pair.image.name, "cell": label, "area_px": int(cell.sum()),
                           "kind": kind})
            tiles.append(crop_view(rgb, cell, pred_labels))
    kinds = sorted({m["kind"] for m in misses})
    tally = {k: sum(m["kind"] == k for m in misses) for k in kinds}
    name = f"visible_misses_{args.category}_depth{depth:g}"
    report = {"run": str(args.run), "category": args.category, "images": len(items),
              "split_depth": depth, "visible_cells": visible_total, "missed": len(misses),
              "by_kind": tally, "misses": misses}
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    if tiles:
        gallery(tiles, args.run / f"{name}.png")
    print(f"{args.category}, split depth {depth:g}: {len(misses)} of {visible_total} visible cells "
          f"missed; {tally}. Wrote {args.out / name}.json and {args.run / name}.png.")


if __name__ == "__main__":
    main()
