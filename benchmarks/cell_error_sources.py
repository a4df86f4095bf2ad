"""Where a model's Dice and NSD on the cells are lost: wrong cells, outlines, or the truth's holes.

    python benchmarks/cell_error_sources.py --model RUN/models/best_model.keras [--data DIR]

On the trainer's validation images (the 158 it holds out of Early's 788 reference training
images; the test images are never touched), the model's mask is scored as cells are (threshold
0.5, cells >= 50 px, split depth 3), then again with one kind of error taken away by the truth:

- every cell detected right: predicted cells without a match removed, missed true cells added
  (or only those under 100 px: the threshold's platelet clumps, dots and smudges are that small);
- the truth's holes given: pixels inside a true cell's outline that the truth leaves out are
  removed from the prediction too (all holes, or only those of at most 2 px);
- both.

What is left of 1 - score after a row is what that kind of error does not explain. Last, a
per-pixel classifier (scikit-learn gradient boosting on colour and local contrast, fitted on
training pixels inside true cells) carves the holes it predicts into the model's cells, and its
average precision on the validation pixels inside true cells says how much of the holes the image
itself determines. Writes benchmarks/results/cell_error_sources.{json,md}.
"""
import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score

from common import DEFAULT_DATA, ROOT
from truth_ceiling import trainer_split, validation_pairs

from allseg.cell_scoring import score_cells, summarize_cells  # noqa: E402
from allseg.cells import fill_small_holes  # noqa: E402
from allseg.images import read_mask, read_rgb  # noqa: E402

MIN_AREA, DEPTH, PINHOLE_PX, SMALL_CELL_PX = 50, 3.0, 2, 100
CARVE_THRESHOLDS = (0.3, 0.5)


def detected_right(true_labels, pred_labels, match, below_px=None):
    """The prediction with its unmatched cells removed and the truth's missed cells added (only
    those under below_px pixels, if given)."""
    def unmatched(labels, matched):
        small = np.bincount(labels.ravel()) < (below_px or np.inf)
        return (labels > 0) & ~np.isin(labels, matched) & small[labels]

    false = unmatched(pred_labels, [p for _, p, _ in match["pairs"]])
    missed = unmatched(true_labels, [t for t, _, _ in match["pairs"]])
    return (pred_labels > 0) & ~false | missed


def cell_tally(true_labels, pred_labels, match):
    """[true cells, missed, false], each as (all, under SMALL_CELL_PX pixels)."""
    def unmatched_areas(labels, matched):
        area = np.bincount(labels.ravel())[1:]
        unmatched = np.ones(len(area), bool)
        unmatched[np.asarray(matched, int) - 1] = False
        return area, area[unmatched]

    true_area, missed = unmatched_areas(true_labels, [t for t, _, _ in match["pairs"]])
    _, false = unmatched_areas(pred_labels, [p for _, p, _ in match["pairs"]])
    return np.array([[len(a), np.count_nonzero(a < SMALL_CELL_PX)]
                     for a in (true_area, missed, false)])


def pixel_features(rgb):
    """Per-pixel colour (RGB, LAB, HSV) and LAB against its blurred surroundings at 1, 2, 4 px."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    layers = [rgb.astype(np.float32), lab, cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)]
    for sigma in (1, 2, 4):
        blurred = cv2.GaussianBlur(lab, (0, 0), sigma)
        layers += [blurred, lab - blurred]
    return np.concatenate(layers, -1)


def inside(mask):
    """The mask's outline filled, less a 1-pixel rim: where a hole can be."""
    filled = ndimage.binary_fill_holes(mask).astype(np.uint8)
    return cv2.erode(filled, np.ones((3, 3), np.uint8)) > 0


def fit_hole_classifier(data, per_image=4000, images=300):
    """Gradient boosting on pixels inside the truth's cells of the trainer's training images:
    hole (the truth leaves it out) or cell."""
    train, _ = trainer_split(data)
    rng = np.random.default_rng(0)
    x, y = [], []
    for name in train[:images]:
        truth = read_mask(data / "Segmented" / "Early" / name)
        where = inside(truth)
        features = pixel_features(read_rgb(data / "Original" / "Early" / name))[where]
        holes = ~truth[where]
        pick = rng.choice(len(holes), min(per_image, len(holes)), replace=False)
        x.append(features[pick])
        y.append(holes[pick])
    return HistGradientBoostingClassifier(max_iter=300, random_state=0).fit(np.concatenate(x),
                                                                            np.concatenate(y))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    import allseg.quiet_start  # noqa: F401
    import keras

    import allseg.losses_metrics  # noqa: F401  (registers the loss, so the model loads)

    pairs = validation_pairs(args.data)
    model = keras.models.load_model(args.model)
    probs = model.predict(np.stack([rgb for rgb, _ in pairs]), batch_size=8, verbose=0)[..., 0]
    classifier = fit_hole_classifier(args.data)

    rows = {}
    hole_counts, hole_scores, hole_truths = [], [], []
    tally = np.zeros((3, 2), int)

    def add(name, pred, truth):
        rows.setdefault(name, []).append(score_cells(pred, truth, MIN_AREA, DEPTH)[0])

    for (rgb, truth), prob in zip(pairs, probs):
        pred = prob > 0.5
        row, true_labels, pred_labels, match = score_cells(pred, truth, MIN_AREA, DEPTH)
        rows.setdefault("the model as it is", []).append(row)
        true_cells = true_labels > 0
        # background enclosed by the cells: all of it, and the pinholes
        holes = fill_small_holes(true_cells, true_cells.size) & ~true_cells
        pinholes = fill_small_holes(true_cells, PINHOLE_PX) & ~true_cells
        hole_counts.append((ndimage.label(holes)[1], ndimage.label(pinholes)[1]))
        detected = detected_right(true_labels, pred_labels, match)
        tally += cell_tally(true_labels, pred_labels, match)
        add("every cell detected right", detected, truth)
        add(f"every cell under {SMALL_CELL_PX} px detected right",
            detected_right(true_labels, pred_labels, match, SMALL_CELL_PX), truth)
        add(f"the truth's holes of <= {PINHOLE_PX} px given", pred & ~pinholes, truth)
        add("all the truth's holes given", pred & ~holes, truth)
        add("every cell detected right and all holes given", detected & ~holes, truth)
        features = pixel_features(rgb)
        p_hole = classifier.predict_proba(features.reshape(-1, features.shape[-1]))[:, 1]
        p_hole = p_hole.reshape(pred.shape)
        where = inside(truth)
        hole_scores.append(p_hole[where])
        hole_truths.append(~truth[where])
        pred_inside = inside(pred)
        for t in CARVE_THRESHOLDS:
            carved = pred & ~(pred_inside & (p_hole > t))
            add(f"holes carved where the pixel classifier says > {t}", carved, truth)

    table = []
    for name, some in rows.items():
        s = summarize_cells(some, MIN_AREA, DEPTH)
        table.append({"change": name, **{k: s[k] for k in ("f1", "count_mae", "dice", "nsd_2px")}})
    counts = np.array(hole_counts)
    hole_ap = average_precision_score(np.concatenate(hole_truths), np.concatenate(hole_scores))
    result = {"model": str(args.model), "images": len(pairs), "min_area_px": MIN_AREA,
              "split_depth_px": DEPTH, "threshold": 0.5,
              "truth_holes_per_image": float(counts[:, 0].mean()),
              f"truth_holes_of_at_most_{PINHOLE_PX}px_per_image": float(counts[:, 1].mean()),
              "hole_classifier_average_precision": float(hole_ap),
              **{f"{kind}_cells{size}": int(n)
                 for kind, pair in zip(("true", "missed", "false"), tally)
                 for size, n in zip(("", f"_under_{SMALL_CELL_PX}px"), pair)},
              "rows": table}
    lines = [f"{len(pairs)} validation images; the truth's cells hold {counts[:, 0].mean():.1f} "
             f"holes per image, {counts[:, 1].mean():.1f} of them of at most {PINHOLE_PX} px. The "
             f"pixel classifier finds the truth's hole pixels inside its cells with an average "
             f"precision of {hole_ap:.2f}.",
             f"Of {tally[0, 0]} true cells, {tally[0, 1]} are under {SMALL_CELL_PX} px; of the "
             f"{tally[1, 0]} the model missed, {tally[1, 1]} are; of its {tally[2, 0]} false cells, "
             f"{tally[2, 1]} are.", "",
             "| change | cell F1 | count error | Dice, cells | NSD 2 px, cells |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['change']} | {r['f1']:.4f} | {r['count_mae']:.3f} | {r['dice']:.4f} "
              f"| {r['nsd_2px']:.4f} |" for r in table]
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cell_error_sources.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "cell_error_sources.md").write_text("\n".join(lines) + "\n")
    print(f"Wrote {args.out / 'cell_error_sources.json'} and .md")


if __name__ == "__main__":
    main()
