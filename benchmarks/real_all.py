"""All four categories: train on the trustworthy truth, score every category, cells and pixels.

    python benchmarks/real_all.py [--data DIR] [--config FILE] [--scratch DIR] [--reuse-run RUN]
                                  [--name NAME] [--tag TAG]

Splits --data (Kaggle layout; split.csv: Early's reference test rows, every other pair train) into
a scratch folder, trains the config there and scores it and the colour rule blue - green > 65 on
each category's validation images (those the trainer holds out of the train rows) and on Early's
197 reference test images: cells (one to one at IoU >= 0.5, as the evaluator counts them) and
pixels against the truth, on every pair and on the pairs the truth audit trusts, and cells against
the visible cells (the stain rule's outlines), which is how Pro is judged where its truth fails.
Writes benchmarks/results/real_all[_TAG].{json,md} and a montage of Pro validation predictions.
"""
import json
from pathlib import Path

import numpy as np

from common import (COLOUR_RULE, DATA, ROOT, blue_minus_green, caption, cell_summary, parse,
                    parser, reference_split, train_or_reuse, write_pictures)

from allseg.core.config import load_config  # noqa: E402  (common puts the project on sys.path)
from allseg.core.files import write_text  # noqa: E402
from allseg.data.images import read_mask, read_rgb  # noqa: E402
from allseg.data.pairing import find_category_pairs, split_pairs  # noqa: E402
from allseg.data.truth_audit import audit_masks, stained_cells  # noqa: E402
from allseg.evaluate.scoring import score_image, summarize  # noqa: E402

MONTAGE_ROWS = 6


def load_item(pair):
    """(pair, rgb, truth, visible cells, audit reasons)."""
    rgb, truth = read_rgb(pair.image), read_mask(pair.mask)
    return pair, rgb, truth, stained_cells(rgb), audit_masks(rgb, truth)["reasons"]


def validation_pairs(cfg):
    """The pairs the trainer holds out of the train rows (same seed and fraction)."""
    t = cfg.train
    return split_pairs(find_category_pairs(t.image_datapath, t.mask_datapath, t.category),
                       t.validation_split, t.seed)[1]


def scores(preds, items, c):
    """Pixel and cell scores against the truth (all pairs; trusted pairs) and cell scores against
    the visible cells."""
    def cells(pairs_of_masks):
        return {k: v for k, v in cell_summary(pairs_of_masks, c).items() if k != "per_image"}

    trusted = [i for i, item in enumerate(items) if not item[4]]
    pixel = summarize([score_image(it[0].image.name, p, it[2]) for p, it in zip(preds, items)])
    out = {"images": len(items), "trusted_images": len(trusted), "mean_dice": pixel["mean_dice"],
           "cells_vs_truth": cells((p, item[2]) for p, item in zip(preds, items)),
           "cells_vs_visible": cells((p, item[3]) for p, item in zip(preds, items))}
    if trusted:
        out["mean_dice_trusted"] = float(np.mean([pixel["per_image"][i]["dice"] for i in trusted]))
        out["cells_vs_truth_trusted"] = cells((preds[i], items[i][2]) for i in trusted)
    return out


def outline_montage(items, preds, c, public_path, private_path):
    """For the first Pro validation images: visible cells (stain rule) against the prediction,
    matched cells white, missed red, false cyan; the private copy has the smear in front."""
    import cv2

    from allseg.cells.instances import cell_settings
    from allseg.evaluate.cell_scoring import score_cells

    public, private = [], []
    for (pair, rgb, truth, visible, _), pred in list(zip(items, preds))[:MONTAGE_ROWS]:
        s, true_labels, pred_labels, match = score_cells(pred, visible, *cell_settings(c))
        matched_true = list({t for t, _, _ in match["pairs"]})
        matched_pred = list({p for _, p, _ in match["pairs"]})
        view = np.zeros(rgb.shape, np.uint8)
        view[np.isin(true_labels, matched_true) & (true_labels > 0)] = (90, 90, 90)
        view[np.isin(pred_labels, matched_pred) & (pred_labels > 0)] = (255, 255, 255)
        view[(true_labels > 0) & ~np.isin(true_labels, matched_true)] = (255, 40, 40)
        view[(pred_labels > 0) & ~np.isin(pred_labels, matched_pred)] = (0, 220, 255)
        over = rgb.copy()
        contours, _ = cv2.findContours(pred.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(over, contours, -1, (0, 160, 0), 1)
        public.append(caption(view, f"{pair.image.name[-11:]} found {s['tp']}/{s['n_true']} "
                                    f"false {s['fp']}", scale=0.38, y=13))
        private.append(np.concatenate([over, view], axis=1))
    write_pictures(public, private, public_path, private_path, axes=(1, 0))


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
                         f"| {trusted} | {v['recall']:.3f} | {v['precision']:.3f} | "
                         f"{v['count_mae']:.2f} | {s['mean_dice']:.3f} |")
    return "\n".join(lines)


def main():
    p = parser(__doc__, data=DATA / "leukemia-all", scratch="real_all")
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "all_cpu_fast.config")
    p.add_argument("--reuse-run", type=Path, help="score the model of this earlier run")
    p.add_argument("--name", default=None, help="what to call the trained model")
    p.add_argument("--tag", default="", help="suffix for the result files")
    args = parse(p)
    all_dir = reference_split(args.data, args.scratch, "all")
    run_dir, config, train_seconds = train_or_reuse(
        args, all_dir, {"eval.category": '"Early"', "eval.skip_flagged_truth": "False"})

    import allseg.core.quiet_start  # noqa: F401  (before TensorFlow starts)
    from allseg.infer.predict import predict_masks
    from allseg.model.unet import load_trained_model

    cfg = load_config(config)
    val = validation_pairs(cfg)
    parts = {f"{name} (validation)": [p for p in val if p.category == name]
             for name in sorted({p.category for p in val})}
    parts["Early (reference test)"] = find_category_pairs(cfg.eval.image_datapath,
                                                          cfg.eval.mask_datapath, "Early")
    print(f"Loading {sum(map(len, parts.values()))} images and their visible cells ...", flush=True)
    items = {part: [load_item(pair) for pair in pairs] for part, pairs in parts.items()}

    name = args.name or f"this run ({args.config.name})"
    print(f"Scoring {name} ...", flush=True)
    model, results = load_trained_model(cfg), {name: {}}
    for part, its in items.items():
        preds = [mask for s in range(0, len(its), 16)  # 16 images a call bounds the memory
                 for mask in predict_masks(model, [rgb for _, rgb, *_ in its[s:s + 16]],
                                           cfg.model, 16)]
        results[name][part] = scores(preds, its, cfg.infer)
        if part == "Pro (validation)":
            outline_montage(its, preds, cfg.infer, args.assets / "real_all_pro_montage.png",
                            run_dir / "pro_montage_with_images.png")
    results[f"colour rule blue - green > {COLOUR_RULE}"] = {
        part: scores([blue_minus_green(rgb) > COLOUR_RULE for _, rgb, *_ in its], its, cfg.infer)
        for part, its in items.items()}

    text = markdown(results)
    print("\n" + text)
    stem = args.out / f"real_all{'_' + args.tag if args.tag else ''}"
    write_text(f"{stem}.json", json.dumps(
        {"config": str(args.config), "run": str(run_dir), "train_minutes": train_seconds / 60,
         "models": {name: str(Path(cfg.train.model_dir) / "best_model.keras")},
         "results": results}, indent=2) + "\n")
    write_text(f"{stem}.md", text + "\n")
    print(f"Training took {train_seconds / 60:.1f} min. Wrote {stem}.json and .md, "
          f"{args.assets / 'real_all_pro_montage.png'}")


if __name__ == "__main__":
    main()
