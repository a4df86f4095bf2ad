"""Where a model and a reference disagree about cells, by kind, with a gallery to judge by eye.

    python benchmarks/visible_misses.py --run RUN [--category Benign] [--split-depth D]
                                        [--against visible|truth] [--list misses|joins] [--out DIR]

RUN is a benchmarks/real_all.py run folder (its `config` and `models/best_model.keras`). On that
run's validation images of one category, against the visible cells (the stain rule's outlines) or
the dataset's truth, it lists either
- misses (the default): each reference cell that no predicted cell matches at IoU >= 0.5, sorted by
  how the prediction covers it:
  - "none": under 10% of it predicted;
  - "inside a larger predicted cell": one predicted cell covers most of it but is over twice its
    size (the rule may outline part of a pale cell the model outlines whole, or the model may join
    the cell to a neighbour: the gallery tells which);
  - "split": two or more predicted cells cover a fifth of it each;
  - "partly": the rest;
- or joins: each reference cell that two or more predicted cells lie mostly inside, and each
  predicted cell that two or more reference cells lie mostly inside, the cases that move a count
  (on crowded Pre counted unsplit, which side is right about touching cells).
Writes <against>_<list>_<category>_depth<D>.json to --out (each case, and the tally) and gallery
PNGs of the same name to RUN, PAGE cases a page: per case, in the JSON's order, the smear crop and
the same crop with the reference cells' outlines (red), and again with the model's cells (cyan);
the listed cell is outlined in yellow on its own side. The gallery shows the dataset's images, so
it stays in the (uncommitted) run folder. With --verdicts (a CSV of by-eye verdicts on a joins
listing), the count error is given again with the reference mended where the model was right.
"""
import argparse
import json
from pathlib import Path

import numpy as np
from skimage import segmentation

from common import ROOT
from real_all import load_items, predict, validation_pairs

from allseg.cell_scoring import score_cells, split_and_merging_cells  # noqa: E402
from allseg.cells import cell_settings  # noqa: E402
from allseg.config import load_config  # noqa: E402

CROP = 80  # px around a missed cell's centre: a cell and its neighbours
ZOOM = 3
PAGE = 12  # cases per gallery page: a page stays small enough to read at full size


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


def joins(pred, reference, settings):
    """(reference label image, predicted label image, [(label, mask, kind, pieces)]): each
    reference cell that two or more predicted cells split, and each predicted cell that joins
    reference cells; pieces is how many cells of the other side lie mostly inside it."""
    _, true_labels, pred_labels, _ = score_cells(pred, reference, *settings)
    split, merging = split_and_merging_cells(true_labels, pred_labels)
    return true_labels, pred_labels, \
        [(t, true_labels == t, "true cell split", n) for t, n in split.items()] + \
        [(p, pred_labels == p, "predicted cell joins true cells", n) for p, n in merging.items()]


def count_errors(counts, cases, verdicts=None):
    """Mean absolute and mean signed count error (predicted minus reference, per image) as scored,
    and, with by-eye verdicts ({case number: "model" | "truth" | "unclear"}), with the reference's
    count mended wherever the model was judged right: a reference cell it split holds that many
    cells, reference cells it joined are one."""
    def errors(fixes):
        diffs = [pred - (true + fixes.get(image, 0)) for image, (true, pred) in counts.items()]
        return {"count_error": round(float(np.mean(np.abs(diffs))), 3),
                "count_bias": round(float(np.mean(diffs)), 3)}

    result = {"as scored": errors({})}
    if verdicts is not None:
        fixes = {}
        for number, case in enumerate(cases, start=1):
            if verdicts[number] == "model":
                step = case["pieces"] - 1
                fixes[case["image"]] = fixes.get(case["image"], 0) + (
                    step if case["kind"] == "true cell split" else -step)
        result["reference mended by eye"] = errors(fixes)
    return result


def read_verdicts(path, cases):
    """{case number: who is right} from a CSV of by-eye verdicts on this listing (columns case,
    image, cell, right); refuses one written for another listing."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(cases) or any(
            (r["image"], int(r["cell"])) != (c["image"], c["cell"]) for r, c in zip(rows, cases)):
        raise SystemExit(f"{path}: its cases are not this listing's ({len(cases)} cases)")
    bad = {r["right"] for r in rows} - {"model", "truth", "unclear"}
    if bad:
        raise SystemExit(f"{path}: 'right' must be model, truth or unclear, not {sorted(bad)}")
    return {int(r["case"]): r["right"] for r in rows}


def crop_view(rgb, cell, ref_labels, pred_labels, predicted=False):
    """The smear around one cell (a boolean mask) three times: plain, with the reference cells'
    outlines (red), and with each of the model's cells outlined (cyan), so a cut or a join shows on
    its own panel. The listed cell is outlined in yellow on its own side's panel (the model's when
    ``predicted``)."""
    import cv2

    ys, xs = np.nonzero(cell)
    cy, cx = int(ys.mean()), int(xs.mean())
    h, w = cell.shape
    y0, x0 = max(0, min(h - CROP, cy - CROP // 2)), max(0, min(w - CROP, cx - CROP // 2))
    window = np.s_[y0:y0 + CROP, x0:x0 + CROP]
    plain = rgb[window].copy()
    reference, model = plain.copy(), plain.copy()
    reference[segmentation.find_boundaries(ref_labels[window], mode="inner")] = (255, 0, 0)
    model[segmentation.find_boundaries(pred_labels[window], mode="inner")] = (0, 220, 255)
    highlight = model if predicted else reference
    highlight[segmentation.find_boundaries(cell[window], mode="inner")] = (255, 230, 0)
    panels = np.concatenate([plain, reference, model], axis=1)
    panels[:, CROP::CROP] = 255  # a white seam between panels
    return cv2.resize(panels, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)


def gallery(tiles, path, per_row=2):
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
    parser.add_argument("--against", choices=("visible", "truth"), default="visible",
                        help="the stain rule's visible cells, or the dataset's truth")
    parser.add_argument("--list", choices=("misses", "joins"), default="misses",
                        help="reference cells no predicted cell matches, or cells that one side "
                             "splits and the other joins (what moves the count)")
    parser.add_argument("--verdicts", type=Path,
                        help="by-eye verdicts on this listing (CSV: case,image,cell,...,right): "
                             "the count error again with the reference mended where the model "
                             "was judged right")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if args.verdicts and args.list != "joins":
        parser.error("--verdicts mends a count, so it needs --list joins")

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

    cases, tiles, total, counts = [], [], 0, {}
    for (pair, rgb, truth, visible, _), pred in zip(items, preds):
        reference = visible if args.against == "visible" else truth
        settings = (min_area, depth, hole_px)
        if args.list == "misses":
            true_labels, pred_labels, found = missed_cells(pred, reference, settings)
            found = [(label, true_labels == label, kind, 1) for label, kind in found]
        else:
            true_labels, pred_labels, found = joins(pred, reference, settings)
        total += int(true_labels.max())
        counts[pair.image.name] = (int(true_labels.max()), int(pred_labels.max()))
        for label, cell, kind, pieces in found:  # pieces: 1 for a miss
            ys, xs = np.nonzero(cell)
            cases.append({"image": pair.image.name, "cell": label,
                           "centre": [int(ys.mean()), int(xs.mean())],
                           "area_px": int(cell.sum()), "kind": kind, "pieces": pieces})
            predicted = kind.startswith("predicted")
            tiles.append(crop_view(rgb, cell, true_labels, pred_labels, predicted))
    kinds = sorted({m["kind"] for m in cases})
    tally = {k: sum(m["kind"] == k for m in cases) for k in kinds}
    name = f"{args.against}_{args.list}_{args.category}_depth{depth:g}"
    report = {"run": str(args.run), "category": args.category, "images": len(items),
              "split_depth": depth, "against": args.against, "listed": args.list,
              "cells": total, "cases": len(cases), "by_kind": tally,
              **count_errors(counts, cases, args.verdicts and read_verdicts(args.verdicts, cases)),
              "list": cases}
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    pages = [tiles[i:i + PAGE] for i in range(0, len(tiles), PAGE)]
    for number, page in enumerate(pages, start=1):
        suffix = f"_{number}" if len(pages) > 1 else ""
        gallery(page, args.run / f"{name}{suffix}.png")
    print(f"{args.category}, split depth {depth:g}: {len(cases)} {args.list} among {total} "
          f"{args.against} cells; {tally}. Wrote {args.out / name}.json and {len(pages)} gallery "
          f"page(s) {args.run / name}*.png.")
    for how in ("as scored", "reference mended by eye"):
        if how in report:
            print(f"Count error {how}: {report[how]['count_error']} "
                  f"(bias {report[how]['count_bias']:+}).")


if __name__ == "__main__":
    main()
