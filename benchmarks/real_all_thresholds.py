"""The decision threshold of a model trained on every category, chosen on validation only.

    python benchmarks/real_all_thresholds.py --run bench_runs/real_all/run-<time>

Predicts each category's validation images (the ones benchmarks/real_all.py scores) once with the
run's model, then scores cells against the dataset's truth and against the visible cells (the
stain rule's) for every threshold in the grid. Prints one table; writes
benchmarks/results/real_all_thresholds.json. Early's reference test images are never touched.
"""
import argparse
import json
from pathlib import Path

from common import ROOT
from real_all import load_items, probabilities, validation_pairs

from allseg.cell_scoring import score_cells, summarize_cells  # noqa: E402
from allseg.cells import cell_settings  # noqa: E402
from allseg.config import load_config  # noqa: E402

THRESHOLDS = (0.4, 0.5, 0.6, 0.7)


def cell_summary(masks, references, c):
    rows = [score_cells(m, r, *cell_settings(c))[0]
            for m, r in zip(masks, references)]
    s = summarize_cells(rows, *cell_settings(c))
    return {k: s[k] for k in ("tp", "fp", "fn", "f1", "precision", "recall", "count_mae",
                              "count_bias")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a benchmarks/real_all.py run folder")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "real_all_thresholds.json")
    args = parser.parse_args()

    import allseg.quiet_start  # noqa: F401
    import keras

    import allseg.losses_metrics  # noqa: F401  (registers the loss, so the model loads)

    cfg = load_config(args.run / "config")
    c, val = cfg.infer, validation_pairs(cfg)
    model = keras.models.load_model(Path(cfg.train.model_dir) / "best_model.keras")
    results = {}
    print("| category | threshold | cell F1 vs truth | count error vs truth | visible cells found |")
    print("|---|---|---|---|---|")
    for category in sorted({p.category for p in val}):
        items = load_items([p for p in val if p.category == category])
        probs = probabilities(model, items)
        for threshold in THRESHOLDS:
            masks = [p > threshold for p in probs]
            r = {"images": len(items),
                 "cells_vs_truth": cell_summary(masks, [i[2] for i in items], c),
                 "cells_vs_visible": cell_summary(masks, [i[3] for i in items], c)}
            results.setdefault(category, {})[str(threshold)] = r
            print(f"| {category} | {threshold} | {r['cells_vs_truth']['f1']:.3f} | "
                  f"{r['cells_vs_truth']['count_mae']:.2f} | {r['cells_vs_visible']['recall']:.3f} |",
                  flush=True)
    args.out.write_text(json.dumps({"run": str(args.run), "results": results}, indent=2) + "\n")
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
