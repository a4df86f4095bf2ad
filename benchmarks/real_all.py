"""All four categories: train on the trustworthy truth, score every category, cells and pixels.

    python benchmarks/real_all.py [--data DIR] [--config FILE] [--scratch DIR] [--reuse-run RUN]
                                  [--compare NAME=MODEL.keras ...]

Splits --data (Kaggle layout with split.csv: Early's reference test rows, every other pair train)
into a scratch folder with split_master.py, trains with the config (data paths pointed there) and
scores, for the trained model, every --compare model and the colour rule blue - green > 65:
- each category's validation images, the ones the trainer held out of the train rows (same seed
  and fraction): pixel and cell scores against the dataset's truth, on every pair and on the
  pairs the truth audit trusts, and cell scores against the visible cells (the stain rule's
  outlines, allseg/data/truth_audit.py), which is how Pro is judged where its truth fails;
- Early's 197 reference test images against their truth.
Cells are scored as the evaluator scores them (one-to-one at IoU >= 0.5). Prints the tables;
writes benchmarks/results/real_all.json and .md, and a montage of Pro validation predictions
(masks only in asset/, with the smears in the scratch folder).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import ROOT, reference_split, run, write_config

from allseg.evaluate.cell_scoring import score_cells, summarize_cells  # noqa: E402
from allseg.cells.instances import cell_settings  # noqa: E402
from allseg.core.config import load_config  # noqa: E402
from allseg.data.images import read_mask, read_rgb, write_png  # noqa: E402  (common puts the project on sys.path)
from allseg.data.pairing import find_category_pairs, split_pairs  # noqa: E402
from allseg.evaluate.scoring import score_image, summarize  # noqa: E402
from allseg.data.truth_audit import audit_masks, stained_cells  # noqa: E402
from allseg.core.files import write_text  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "leukemia-all"
COLOUR_RULE = 65  # blue - green above this: the rule the cross-category issue compared against
MONTAGE_ROWS = 6


def load_items(pairs):
    """(pair, rgb, truth, visible cells, audit reasons) for each pair."""
    items = []
    for pair in pairs:
        rgb, truth = read_rgb(pair.image), read_mask(pair.mask)
        items.append((pair, rgb, truth, stained_cells(rgb), audit_masks(rgb, truth)["reasons"]))
    return items


def probabilities(model, items, tta=False):
    """Each item's probability map, resized to its image's own size."""
    from allseg.infer.predict import predict_probabilities, resize_probability

    probs = []
    for start in range(0, len(items), 16):
        chunk = items[start:start + 16]
        batch = np.stack([rgb for _, rgb, *_ in chunk])
        probs += [resize_probability(prob, *item[2].shape)
                  for prob, item in zip(predict_probabilities(model, batch, tta), chunk)]
    return probs


def predict(model, items, m):
    """Masks at each image's own size, with the [model] section's flips and threshold."""
    return [prob > m.threshold for prob in probabilities(model, items, m.tta_flips)]


def validation_pairs(cfg):
    """The pairs the trainer holds out of the train rows (same seed and fraction)."""
    t = cfg.train
    return split_pairs(find_category_pairs(t.image_datapath, t.mask_datapath, t.category),
                       t.validation_split, t.seed)[1]


def scores(preds, items, c):
    """Pixel and cell scores against the truth (all pairs; trusted pairs) and cell scores against
    the visible cells."""
    def cells(pairs_of_masks):
        rows = [score_cells(p, t, *cell_settings(c))[0] for p, t in pairs_of_masks]
        return {k: v for k, v in summarize_cells(rows, *cell_settings(c)).items()
                if k != "per_image"}

    trusted = [i for i, item in enumerate(items) if not item[4]]
    pixel = summarize([score_image(item[0].image.name, p, item[2]) for p, item in zip(preds, items)])
    out = {"images": len(items), "trusted_images": len(trusted), "mean_dice": pixel["mean_dice"],
           "cells_vs_truth": cells((p, item[2]) for p, item in zip(preds, items)),
           "cells_vs_visible": cells((p, item[3]) for p, item in zip(preds, items))}
    if trusted:
        out["mean_dice_trusted"] = float(np.mean([pixel["per_image"][i]["dice"] for i in trusted]))
        out["cells_vs_truth_trusted"] = cells((preds[i], items[i][2]) for i in trusted)
    return out


def colour_rule(items):
    return [(rgb[..., 2].astype(np.int16) - rgb[..., 1].astype(np.int16)) > COLOUR_RULE
            for _, rgb, *_ in items]


def outline_montage(items, preds, c, public_path, private_path):
    """For the first Pro validation images: visible cells (stain rule) against the prediction,
    matched cells white, missed red, false cyan; the private copy has the smear in front."""
    import cv2

    public, private = [], []
    for (pair, rgb, truth, visible, _), pred in list(zip(items, preds))[:MONTAGE_ROWS]:
        s, true_labels, pred_labels, match = score_cells(pred, visible, *cell_settings(c))
        matched_true = {t for t, _, _ in match["pairs"]}
        matched_pred = {p for _, p, _ in match["pairs"]}
        view = np.zeros(rgb.shape, np.uint8)
        view[np.isin(true_labels, list(matched_true)) & (true_labels > 0)] = (90, 90, 90)
        view[np.isin(pred_labels, list(matched_pred)) & (pred_labels > 0)] = (255, 255, 255)
        view[(true_labels > 0) & ~np.isin(true_labels, list(matched_true))] = (255, 40, 40)
        view[(pred_labels > 0) & ~np.isin(pred_labels, list(matched_pred))] = (0, 220, 255)
        over = rgb.copy()
        contours, _ = cv2.findContours(pred.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(over, contours, -1, (0, 160, 0), 1)
        cv2.putText(view, f"{pair.image.name[-11:]} found {s['tp']}/{s['n_true']} false {s['fp']}",
                    (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 0), 1, cv2.LINE_AA)
        public.append(view)
        private.append(np.concatenate([over, view], axis=1))
    for parts, target in ((public, public_path), (private, private_path)):
        grid = np.concatenate(parts, axis=1 if target == public_path else 0)
        write_png(target, grid)


def markdown(results):
    lines = ["| model | category | images | cell F1 vs truth | count error vs truth | "
             "cell F1 vs truth, trusted pairs | visible cells found (recall) | precision vs "
             "visible | count error vs visible | mean Dice vs truth |", "|---" * 10 + "|"]
    for name, by_part in results.items():
        for part, s in by_part.items():
            t, v = s["cells_vs_truth"], s["cells_vs_visible"]
            tt = s.get("cells_vs_truth_trusted")
            trusted = "-" if tt is None else f"{tt['f1']:.3f} ({s['trusted_images']})"
            lines.append(f"| {name} | {part} | {s['images']} | {t['f1']:.3f} | {t['count_mae']:.2f} "
                         f"| {trusted} | "
                         f"{v['recall']:.3f} | {v['precision']:.3f} | {v['count_mae']:.2f} | "
                         f"{s['mean_dice']:.3f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "all_cpu.config")
    parser.add_argument("--scratch", type=Path, default=ROOT / "bench_runs" / "real_all")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--assets", type=Path, default=ROOT / "asset")
    parser.add_argument("--reuse-run", type=Path, help="score the model of this earlier run")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=MODEL",
                        help="also score this saved model (e.g. an Early-only one)")
    parser.add_argument("--name", default=None, help="what to call the trained model")
    parser.add_argument("--tag", default="", help="suffix for the result files (levers)")
    args = parser.parse_args()
    for folder in (args.out, args.assets):
        folder.mkdir(parents=True, exist_ok=True)
    if not (args.data / "split.csv").is_file():
        raise SystemExit(f"{args.data}: no split.csv there; pass --data with the four categories")

    all_dir = reference_split(args.data, args.scratch, "all")
    run_dir = args.reuse_run or args.scratch / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    # a rescore keeps the config the run trained with, and writes its own beside it
    config_path = run_dir / (f"config-rescore{args.tag and '-' + args.tag}" if args.reuse_run else "config")
    config = write_config(args.config, config_path, run_dir, all_dir,
                          {"eval.category": '"Early"', "eval.skip_flagged_truth": "False"})
    if args.reuse_run:
        train_seconds = float((run_dir / "train_seconds.txt").read_text())
    else:
        train_seconds = run("TensorflowUNetALLTrainer.py", config)
        write_text(run_dir / "train_seconds.txt", f"{train_seconds:.1f}\n")

    import allseg.core.quiet_start  # noqa: F401
    import keras

    import allseg.model.losses_metrics  # noqa: F401  (registers the loss, so saved models load)

    cfg = load_config(config)
    c, t = cfg.infer, cfg.train
    val = validation_pairs(cfg)
    test = find_category_pairs(cfg.eval.image_datapath, cfg.eval.mask_datapath, "Early")
    parts = {f"{name} (validation)": [p for p in val if p.category == name]
             for name in sorted({p.category for p in val})}
    parts["Early (reference test)"] = test
    print(f"Loading {sum(map(len, parts.values()))} images and their visible cells ...", flush=True)
    items = {part: load_items(pairs) for part, pairs in parts.items()}

    models = {args.name or f"this run ({args.config.name})": Path(t.model_dir) / "best_model.keras",
              **{n: Path(m) for n, m in (spec.split("=", 1) for spec in args.compare)}}
    results = {}
    for name, model_path in models.items():
        print(f"Scoring {name} ...", flush=True)
        model, results[name] = keras.models.load_model(model_path), {}
        for part, its in items.items():
            if name != next(iter(models)) and part == "Early (validation)":
                continue  # a compared Early model may have trained on these images
            preds = predict(model, its, cfg.model)
            results[name][part] = scores(preds, its, c)
            if name == next(iter(models)) and part == "Pro (validation)":
                outline_montage(its, preds, c, args.assets / "real_all_pro_montage.png",
                                run_dir / "pro_montage_with_images.png")
    results[f"colour rule blue - green > {COLOUR_RULE}"] = {
        part: scores(colour_rule(its), its, c) for part, its in items.items()}

    text = markdown(results)
    print()
    print(text)
    stem = f"real_all{'_' + args.tag if args.tag else ''}"
    write_text(args.out / f"{stem}.json", json.dumps(
        {"config": str(args.config), "run": str(run_dir), "train_minutes": train_seconds / 60,
         "models": {n: str(m) for n, m in models.items()}, "results": results}, indent=2) + "\n")
    write_text(args.out / f"{stem}.md", text + "\n")
    print(f"Training took {train_seconds / 60:.1f} min. Wrote {args.out / stem}.json and .md, "
          f"{args.assets / 'real_all_pro_montage.png'}")


if __name__ == "__main__":
    main()
