"""How firmly the dataset's truth fixes a cell count: the truth against itself, redrawn.

    python benchmarks/count_ceiling.py [--data DIR] [--thresholds 25 35] [--out DIR]

The truth is grayscale(Segmented) > 30. Drawn at a neighbouring threshold instead (25 or 35: the
same cells, a few edge pixels more or fewer), it is scored as if it were a prediction against the
truth at 30, per category, with cells counted both ways the project knows: touching cells split
(`[infer] cell_split_depth = 3`, the default) and not split (depth 0, one 8-connected region of at
least 50 px per cell). Whatever count error a redrawn truth makes is not something a model can be
blamed for: it is how much a count depends on where the threshold happened to fall. Every pair in
--data (Kaggle layout) is used; no model is involved. Writes count_ceiling.json and .md.
"""
import argparse
import json
from pathlib import Path

from common import ROOT

from allseg.cell_scoring import score_cells, summarize_cells  # noqa: E402
from allseg.cells import SPLIT_HOLE_PX  # noqa: E402
from allseg.images import MASK_GRAY_THRESHOLD, mask_from_segmented, read_rgb  # noqa: E402
from allseg.pairing import category_names, find_pairs  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "leukemia-all"
MIN_AREA = 50
DEPTHS = {"split (depth 3)": 3.0, "not split (depth 0)": 0.0}
KEYS = ("n_true", "n_pred", "f1", "count_mae", "count_bias", "split_true", "merged_pred")


def truths_at(path, thresholds):
    """The mask of one Segmented image at the dataset's threshold and at each other one."""
    rgb = read_rgb(path)
    return mask_from_segmented(rgb), {t: mask_from_segmented(rgb, t) for t in thresholds}


def category_scores(pairs, thresholds):
    rows = {(t, d): [] for t in thresholds for d in DEPTHS}
    for pair in pairs:
        truth, redrawn = truths_at(pair.mask, thresholds)
        for t, mask in redrawn.items():
            for d, depth in DEPTHS.items():
                rows[t, d].append(score_cells(mask, truth, MIN_AREA, depth, SPLIT_HOLE_PX)[0])
    return {f"threshold {t}, {d}": {k: summarize_cells(r, MIN_AREA, DEPTHS[d])[k] for k in KEYS}
            for (t, d), r in rows.items()}


def markdown(results):
    lines = ["| category | truth redrawn at | cells | true cells | cell F1 | count error | count bias "
             "| true cells split | redrawn cells merging true ones |", "|---" * 9 + "|"]
    for category, per in results.items():
        for name, s in per.items():
            threshold, cells = name.split(", ", 1)
            lines.append(f"| {category} | {threshold} | {cells} | {s['n_true']} | {s['f1']:.3f} | "
                         f"{s['count_mae']:.2f} | {s['count_bias']:+.2f} | {s['split_true']} | "
                         f"{s['merged_pred']} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--thresholds", type=int, nargs="+", default=[25, 35])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    image_dir, mask_dir = args.data / "Original", args.data / "Segmented"
    if not mask_dir.is_dir():
        raise SystemExit(f"{args.data}: no Segmented/ folder there; pass --data in the Kaggle layout")
    results = {}
    for name in category_names(image_dir, "all"):
        pairs = find_pairs(image_dir, mask_dir, name)
        print(f"{name}: {len(pairs)} pairs ...", flush=True)
        results[name] = category_scores(pairs, args.thresholds)
    text = markdown(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "count_ceiling.json").write_text(json.dumps(
        {"data": str(args.data), "min_area_px": MIN_AREA, "reference_threshold": MASK_GRAY_THRESHOLD,
         "results": results}, indent=2) + "\n")
    (args.out / "count_ceiling.md").write_text(text + "\n")
    print(f"Wrote {args.out / 'count_ceiling.json'} and .md")


if __name__ == "__main__":
    main()
