"""Cell-level settings of a trained model, chosen on the validation images only.

    python benchmarks/cell_levers.py --model RUN/models/best_model.keras [--data DIR]

Predicts the trainer's validation images (the 158 it holds out of Early's 788 reference training
images) once, then scores cells for every decision threshold and split depth in the grid, both
applied to truth and prediction alike (split depth) or to the prediction (threshold). Prints one
table; writes benchmarks/results/cell_levers.json. The test images are never touched.

Each threshold's count error and cell F1 are also given as differences from threshold 0.5 at the
same split depth, with a 95% bootstrap interval over the images (allseg/compare.py): a setting
whose interval includes 0 has not shown a gain larger than the images' noise.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from common import DEFAULT_DATA, ROOT
from truth_ceiling import validation_pairs

from allseg.cell_scoring import score_cells, summarize_cells  # noqa: E402
from allseg.compare import paired_interval  # noqa: E402
from allseg.scoring import score_image, summarize  # noqa: E402

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
REFERENCE_THRESHOLD = 0.5
SPLIT_DEPTHS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
CELL_MIN_AREA = 50


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cell_levers.json")
    args = parser.parse_args()

    import allseg.quiet_start  # noqa: F401
    import keras

    import allseg.losses_metrics  # noqa: F401  (registers the loss, so the model loads)

    pairs = validation_pairs(args.data)
    model = keras.models.load_model(args.model)
    probs = model.predict(np.stack([rgb for rgb, _ in pairs]), batch_size=8, verbose=0)[..., 0]
    truths = [truth for _, truth in pairs]

    results, reference_rows = [], {}
    print(f"{len(pairs)} validation images; cells >= {CELL_MIN_AREA} px, matched at IoU >= 0.5")
    print("| threshold | split depth | true cells | cell F1 | precision | recall | PQ | count error "
          "| count bias | Dice (cells) | NSD 2 px | HD95 | mean Dice (raw truth) "
          f"| count error vs {REFERENCE_THRESHOLD} [95% CI] | F1 vs {REFERENCE_THRESHOLD} [95% CI] |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for threshold in sorted(THRESHOLDS, key=lambda t: t != REFERENCE_THRESHOLD):  # reference first
        preds = probs > threshold
        pixel = summarize([score_image(i, p, t) for i, (p, t) in enumerate(zip(preds, truths))])
        for depth in SPLIT_DEPTHS:
            rows = [score_cells(p, t, CELL_MIN_AREA, depth)[0] for p, t in zip(preds, truths)]
            s = summarize_cells(rows, CELL_MIN_AREA, depth)
            reference = reference_rows.setdefault(depth, rows)
            vs = {key: paired_interval(reference, rows,
                                       lambda rs, k=key: summarize_cells(rs, CELL_MIN_AREA, depth)[k])
                  for key in ("count_mae", "f1")}
            results.append({"threshold": threshold, "split_depth": depth,
                            "mean_dice_raw_truth": pixel["mean_dice"],
                            **{k: v for k, v in s.items() if k != "definition"},
                            **{f"{k}_vs_reference_ci95": v for k, v in vs.items()}})
            print(f"| {threshold} | {depth:g} | {s['n_true']} | {s['f1']:.4f} | {s['precision']:.4f} "
                  f"| {s['recall']:.4f} | {s['panoptic_quality']:.4f} | {s['count_mae']:.3f} | "
                  f"{s['count_bias']:+.3f} | {s['dice']:.4f} | {s['nsd_2px']:.4f} | {s['hd95']:.2f} "
                  f"| {pixel['mean_dice']:.4f} | {interval(vs['count_mae'], 3)} "
                  f"| {interval(vs['f1'], 4)} |", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": str(args.model), "images": len(pairs),
                                    "cell_min_area": CELL_MIN_AREA,
                                    "reference_threshold": REFERENCE_THRESHOLD, "rows": results},
                                   indent=2) + "\n")
    print(f"Wrote {args.out}")


def interval(diff_low_high, digits):
    diff, low, high = diff_low_high
    return f"{diff:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


if __name__ == "__main__":
    main()
