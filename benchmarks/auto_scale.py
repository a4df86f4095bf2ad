"""What [infer] cell_diameter = "auto" reads, folder by folder, resampled and magnified.

For each FOLDER of images: the scale the shipped model picks, the cell size it read and the time
it took. With --resampled: the Kaggle validation images (the shipped model's own hold-out) scored
after resampling by each factor, which is why "auto" leaves cells within TOLERANCE alone. With
--magnified F ...: Early's first 100 test images and their truth enlarged by each F, scored tiled
at their own size, at the scale auto reads, and at 1/F. Writes auto_scale.{json,md} to
benchmarks/results/."""
import argparse
import time

import cv2
import numpy as np

from common import ROOT, cell_summary, validation_pairs, write_results

import allseg.core.quiet_start  # noqa: F401  (before TensorFlow starts)
from allseg.core.config import load_config
from allseg.data.images import list_images, read_mask, read_rgb
from allseg.infer.engines import load_predictor
from allseg.infer.predict import predict_masks
from allseg.infer.scale import estimate_scale, resampling, sample_evenly, scale_to_use
from allseg.model.shipped import SHIPPED_MODEL, load_for_model

FACTORS = (0.63, 0.71, 0.79, 0.89, 1.0, 1.12, 1.26, 1.41, 1.59)
PER_CATEGORY = 80  # validation images scored per category and factor


def read_folders(model, cfg, folders):
    rows = []
    for folder in folders:
        files = list_images(folder)
        start = time.perf_counter()
        factor, note = resampling(cfg, model, files)
        rows.append({"folder": str(folder), "images": len(files), "factor": factor,
                     "seconds": time.perf_counter() - start, "note": note})
        print(f"{folder}: {note} ({rows[-1]['seconds']:.1f} s)", flush=True)
    return rows


def resampled_f1(model, cfg):
    """{category: {factor: cell F1}} on the first PER_CATEGORY validation images of each."""
    by_category = validation_pairs(load_config(SHIPPED_MODEL.with_suffix(".config")))
    table = {}
    for category in ("Benign", "Early", "Pre"):  # Pro's truth is broken (docs/results.md)
        pairs = by_category[category][:PER_CATEGORY]
        rgbs, truths = [read_rgb(p.image) for p in pairs], [read_mask(p.mask) for p in pairs]
        table[category] = {}
        for factor in FACTORS:
            preds = predict_masks(model, rgbs, cfg.model, cfg.train.batch_size, scale=factor)
            table[category][factor] = cell_summary(zip(preds, truths), cfg.infer)["f1"]
        print(category, " ".join(f"{f}: {v:.3f}" for f, v in table[category].items()), flush=True)
    return table


def magnified(model, cfg, factors, test_dir):
    """{F: {"read": scale auto read, "native"/"auto"/"ideal": (cell F1, count error)}}."""
    images = list_images(f"{test_dir}/original/Early")[:100]
    items = [(read_rgb(p), read_mask(f"{test_dir}/segmented/Early/{p.name}")) for p in images]
    table = {}
    for f in factors:
        how = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
        rgbs = [cv2.resize(rgb, None, fx=f, fy=f, interpolation=how) for rgb, _ in items]
        truths = [cv2.resize(t.astype(np.uint8), rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
                  > 0 for rgb, (_, t) in zip(rgbs, items)]
        read = estimate_scale(model, sample_evenly(rgbs, 64), cfg)
        table[f] = {"read": read}
        for name, scale in (("native", 1.0), ("auto", scale_to_use(read)), ("ideal", 1 / f)):
            preds = predict_masks(model, rgbs, cfg.model, cfg.train.batch_size, True, scale)
            # cells counted as at the images' own scale
            cells = cell_summary(zip(preds, truths), cfg.infer, 1 / f)
            table[f][name] = (cells["f1"], cells["count_mae"])
        print(f, table[f], flush=True)
    return table


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="*")
    p.add_argument("--resampled", action="store_true",
                   help="also score the Kaggle validation images resampled by each factor")
    p.add_argument("--magnified", type=float, nargs="*", default=[], metavar="F",
                   help="also score Early's test images (ALL/test) enlarged by each F")
    p.add_argument("--test-dir", default=ROOT / "ALL" / "test",
                   help="the split's test folder, with original/Early and segmented/Early")
    args = p.parse_args()
    cfg = load_for_model(ROOT / "train_eval_infer.config", "pretrained")
    model = load_predictor(cfg)
    result = {"folders": read_folders(model, cfg, args.folders)}
    lines = ["| folder | images | factor | what it printed | read in |", "|---|---|---|---|---|"]
    lines += [f"| {r['folder']} | {r['images']} | {r['factor']:.3g} | {r['note']} | "
              f"{r['seconds']:.1f} s |" for r in result["folders"]]
    if args.resampled:
        result["resampled_cell_f1"] = table = resampled_f1(model, cfg)
        lines += ["", "| cell F1, resampled by | " + " | ".join(map(str, FACTORS)) + " |",
                  "|---" * (len(FACTORS) + 1) + "|"]
        lines += [f"| {c} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |"
                  for c, row in table.items()]
    if args.magnified:
        result["magnified"] = table = magnified(model, cfg, args.magnified, args.test_dir)
        header = ("| Early test enlarged by | scale read (ideal) | cell F1 / count error: tiled "
                  "at own size | at the scale read | at 1/F |")
        lines += ["", header, "|---|---|---|---|---|"]
        lines += [f"| {f:g} | {r['read']:.3f} ({1 / f:.3f}) | " + " | ".join(
            f"{r[k][0]:.3f} / {r[k][1]:.2f}" for k in ("native", "auto", "ideal")) + " |"
            for f, r in table.items()]
    write_results(ROOT / "benchmarks" / "results" / "auto_scale", result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
