"""All four categories: train on the trustworthy truth, score every category, cells and pixels.

Splits --data (Kaggle layout; split.csv: Early's reference test rows, every other pair train) into
a scratch folder, trains the config there and scores it and the colour rule blue - green > 65 on
each category's validation images (those the trainer holds out of the train rows) and on Early's
197 reference test images: cells (one to one at IoU >= 0.5, as the evaluator counts them) and
pixels against the truth, on every pair and on the pairs the truth audit trusts, and cells against
the visible cells (the stain rule's outlines), which is how Pro is judged where its truth fails.
Writes benchmarks/results/real_all[_TAG].{json,md} and a montage of Pro validation predictions.
"""
from pathlib import Path

import cv2
import numpy as np

from common import (COLOUR_RULE, DATA, blue_minus_green, caption, cell_summary, parse, parser,
                    train_or_reuse, validation_pairs, write_pictures, write_results)

from allseg.cells.instances import cell_settings  # noqa: E402  (common: the project on sys.path)
from allseg.cells.scoring import pixel_scores, score_cells, summarize  # noqa: E402
from allseg.core.config import load_config  # noqa: E402
from allseg.data.images import read_mask, read_rgb  # noqa: E402
from allseg.data.pairing import find_category_pairs  # noqa: E402
from allseg.data.truth_audit import audit_masks, stained_cells  # noqa: E402

MONTAGE_ROWS = 6


def load_item(pair):
    """(pair, rgb, truth, visible cells, audit reasons)."""
    rgb, truth = read_rgb(pair.image), read_mask(pair.mask)
    return pair, rgb, truth, stained_cells(rgb), audit_masks(rgb, truth)["reasons"]


def scores(preds, items, c):
    """Pixel and cell scores against the truth (all pairs; trusted pairs) and cell scores against
    the visible cells."""
    def cells(pairs_of_masks):
        return {k: v for k, v in cell_summary(pairs_of_masks, c).items() if k != "per_image"}

    trusted = [i for i, item in enumerate(items) if not item[4]]
    pixel = summarize([pixel_scores(it[0].image.name, p, it[2]) for p, it in zip(preds, items)])
    out = {"images": len(items), "trusted_images": len(trusted), "mean_dice": pixel["mean_dice"],
           "cells_vs_truth": cells((p, item[2]) for p, item in zip(preds, items)),
           "cells_vs_visible": cells((p, item[3]) for p, item in zip(preds, items))}
    if trusted:
        out["mean_dice_trusted"] = float(np.mean([pixel["per_image"][i]["dice"] for i in trusted]))
        out["cells_vs_truth_trusted"] = cells((preds[i], items[i][2]) for i in trusted)
    return out


def outline_montage(items, preds, c, public_path, private_path):
    """For the first Pro validation images: visible cells (stain rule) against the prediction,
    matched cells white (the visible cell under them grey), missed red, false cyan; the private
    copy has the smear in front."""
    pictures = []
    for (pair, rgb, truth, visible, _), pred in list(zip(items, preds))[:MONTAGE_ROWS]:
        s, true_labels, pred_labels, match = score_cells(pred, visible, *cell_settings(c))
        found_true = np.isin(true_labels, [t for t, _, _ in match["pairs"]]) & (true_labels > 0)
        found_pred = np.isin(pred_labels, [p for _, p, _ in match["pairs"]]) & (pred_labels > 0)
        view = np.zeros(rgb.shape, np.uint8)  # painted in this order, each over the one before
        view[found_true], view[found_pred] = (90, 90, 90), (255, 255, 255)
        view[(true_labels > 0) & ~found_true] = (255, 40, 40)
        view[(pred_labels > 0) & ~found_pred] = (0, 220, 255)
        over = rgb.copy()
        contours, _ = cv2.findContours(pred.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(over, contours, -1, (0, 160, 0), 1)
        pictures.append((over, caption(view, f"{pair.image.name[-11:]} found {s['tp']}/"
                                             f"{s['n_true']} false {s['fp']}", scale=0.38, y=13)))
    write_pictures(pictures, public_path, private_path, axes=(1, 0))


def markdown(results):
    lines = ["| model | category | images | cell F1 vs truth | count error vs truth | "
             "cell F1 vs truth, trusted pairs | visible cells found (recall) | precision vs "
             "visible | count error vs visible | mean Dice vs truth |", "|---" * 10 + "|"]
    for name, by_part in results.items():
        for part, s in by_part.items():
            t, v = s["cells_vs_truth"], s["cells_vs_visible"]
            tt = s.get("cells_vs_truth_trusted")
            trusted = "-" if tt is None else f"{tt['f1']:.3f} ({s['trusted_images']})"
            lines.append(f"| {name} | {part} | {s['images']} | {t['f1']:.3f} | "
                         f"{t['count_mae']:.2f} | {trusted} | {v['recall']:.3f} | "
                         f"{v['precision']:.3f} | {v['count_mae']:.2f} | {s['mean_dice']:.3f} |")
    return "\n".join(lines)


def main():
    p = parser(__doc__, data=DATA / "leukemia-all", scratch="real_all",
               config="all_cpu_fast.config")
    p.add_argument("--name", default=None, help="what to call the trained model")
    p.add_argument("--tag", default="", help="suffix for the result files")
    args = parse(p)
    _, run_dir, config, train_seconds = train_or_reuse(
        args, "all", {"eval.category": '"Early"', "eval.skip_flagged_truth": "False"})

    import allseg.core.quiet_start  # noqa: F401  (before TensorFlow starts)
    from allseg.infer.predict import predict_masks
    from allseg.model.unet import load_trained_model

    cfg = load_config(config)
    parts = {f"{name} (validation)": pairs for name, pairs in validation_pairs(cfg).items()}
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
    write_results(stem, {"config": str(args.config), "run": str(run_dir),
                         "train_minutes": train_seconds / 60,
                         "models": {name: str(Path(cfg.train.model_dir) / "best_model.keras")},
                         "results": results}, text)
    print(f"Training took {train_seconds / 60:.1f} min. Wrote {stem}.json and .md, "
          f"{args.assets / 'real_all_pro_montage.png'}")


if __name__ == "__main__":
    main()
