"""How far the Early-class ground truth is from anything a model can learn: specks and colour rules.

    python benchmarks/truth_ceiling.py [--data DIR] [--out DIR] [--model best_model.keras]

Measures, on the reference split, (1) how much of the truth lies in tiny specks and thin lines, as
the Dice of the truth against itself with them removed (components below N pixels; a 3x3
opening): a model that finds every cell perfectly but none of these scores exactly that; (2) how
much lies in regions cut by the image border; (3) a pure colour rule:
each pixel's colour (64 levels per channel) mapped to the majority label of the training pixels of
that colour, scored on train and test: its train score bounds what colour alone explains.
With --model (a trained best_model.keras), also (4) where that model's errors lie on the
validation images the trainer held out (seed 42, 20%): in specks or in larger regions, and what
its mean Dice would be if it found every speck pixel it missed.
"""
import argparse
import csv
import json
from pathlib import Path

import cv2
import numpy as np

from common import DEFAULT_DATA, ROOT

from allseg.images import read_mask, read_rgb  # noqa: E402
from allseg.predict import remove_small_components  # noqa: E402
from allseg.scoring import confusion, dice  # noqa: E402

LEVELS = 64


def load(data, split):
    with open(data / "split.csv", newline="") as handle:
        names = [r["filename"] for r in csv.DictReader(handle) if r["split"] == split]
    return [(read_rgb(data / "Original" / "Early" / n), read_mask(data / "Segmented" / "Early" / n))
            for n in names]


def colour_index(rgb):
    q = (rgb // (256 // LEVELS)).astype(np.int64)
    return (q[..., 0] * LEVELS + q[..., 1]) * LEVELS + q[..., 2]


def trainer_split(data):
    """(training names, validation names): how the trainer (seed 42, 20%) divides the reference
    training split."""
    from allseg.pairing import split_pairs
    with open(data / "split.csv", newline="") as handle:
        names = sorted((r["filename"] for r in csv.DictReader(handle) if r["split"] == "train"),
                       key=lambda n: Path(n).stem)  # the trainer pairs files in stem order
    return split_pairs(names, 0.2, 42)


def validation_pairs(data):
    """The validation images the trainer holds out of the reference training split."""
    _, val = trainer_split(data)
    return [(read_rgb(data / "Original" / "Early" / n), read_mask(data / "Segmented" / "Early" / n))
            for n in val]


def model_errors(model_path, pairs, speck=10):
    """Where a trained model's errors lie: missed / false pixels in truth / predicted regions
    below ``speck`` pixels, 10-99 and 100+; and its mean Dice with every missed speck pixel found."""
    import importlib

    import keras
    importlib.import_module("allseg.losses_metrics")  # registers the loss, so the model loads
    model = keras.models.load_model(model_path)
    size = model.input_shape[1]
    if size != pairs[0][0].shape[0]:
        raise SystemExit(f"{model_path}: expects {size}x{size} inputs; this check needs a model "
                         "trained at the images' own size (224)")
    x = np.stack([rgb for rgb, _ in pairs]).astype(np.float32)
    probs = np.concatenate([model.predict_on_batch(x[i:i + 16])[..., 0] for i in range(0, len(x), 16)])
    counts = {f"{kind}_{band}": 0 for kind in ("missed", "false") for band in ("speck", "mid", "large")}
    found_specks, speck_probs, tp = [], [], 0
    for prob, (_, truth) in zip(probs, pairs):
        pred = prob > 0.5
        tp += int((pred & truth).sum())
        for kind, wrong, regions in (("missed", truth & ~pred, truth), ("false", pred & ~truth, pred)):
            _, labels, stats, _ = cv2.connectedComponentsWithStats(regions.astype(np.uint8), connectivity=8)
            area = stats[labels, cv2.CC_STAT_AREA]
            counts[f"{kind}_speck"] += int((wrong & (area < speck)).sum())
            counts[f"{kind}_mid"] += int((wrong & (area >= speck) & (area < 100)).sum())
            counts[f"{kind}_large"] += int((wrong & (area >= 100)).sum())
        specks = truth & ~remove_small_components(truth, speck)
        speck_probs.append(prob[specks])
        found_specks.append(pred | specks)
    errors = sum(counts.values())
    return {
        "validation_images": len(pairs),
        "mean_dice": mean_dice([p > 0.5 for p in probs], [t for _, t in pairs]),
        "mean_dice_with_missed_specks_found": mean_dice(found_specks, [t for _, t in pairs]),
        "share_of_error_pixels": {k: v / errors for k, v in counts.items()},
        "probability_at_speck_pixels_quartiles": np.percentile(np.concatenate(speck_probs), [25, 50, 75]).tolist(),
        "pooled_dice": 2 * tp / (2 * tp + errors),
    }


def mean_dice(preds, truths):
    return float(np.mean([dice(*confusion(p, t)[:3]) for p, t in zip(preds, truths)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--model", type=Path, help="a trained best_model.keras (224x224) to analyse")
    args = parser.parse_args()
    train, test = load(args.data, "train"), load(args.data, "test")
    result = {}

    truths = [m for _, m in test]
    for area in (3, 5, 10, 20):
        result[f"truth_without_specks_below_{area}px_mean_dice"] = mean_dice(
            [remove_small_components(t, area) for t in truths], truths)
    # Thin structures (rings traced along red-cell rims, one-pixel lines) vanish under a 3x3
    # opening; solid cells survive it.
    kernel = np.ones((3, 3), np.uint8)
    opened = [cv2.morphologyEx(t.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool) for t in truths]
    result["truth_after_3x3_opening_mean_dice"] = mean_dice(opened, truths)
    speck_pixels = sum(int((t & ~remove_small_components(t, 10)).sum()) for t in truths)
    result["share_of_truth_pixels_in_specks_below_10px"] = speck_pixels / sum(int(t.sum()) for t in truths)

    border = 0
    for t in truths:
        count, labels = cv2.connectedComponents(t.astype(np.uint8), connectivity=8)
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        border += int(np.isin(labels, edge[edge > 0]).sum())
    result["share_of_truth_pixels_in_border_cut_regions"] = border / sum(int(t.sum()) for t in truths)

    fg = np.zeros(LEVELS ** 3, np.int64)
    total = np.zeros(LEVELS ** 3, np.int64)
    for rgb, mask in train:
        idx = colour_index(rgb).ravel()
        total += np.bincount(idx, minlength=LEVELS ** 3)
        fg += np.bincount(idx, weights=mask.ravel(), minlength=LEVELS ** 3).astype(np.int64)
    rule = fg * 2 > total
    for name, split in (("train", train), ("test", test)):
        result[f"colour_lookup_rule_mean_dice_{name}"] = mean_dice(
            [rule[colour_index(rgb)] for rgb, _ in split], [m for _, m in split])

    if args.model:
        result["model_on_validation"] = model_errors(args.model, validation_pairs(args.data))
        result["model_on_validation"]["model"] = str(args.model)
    for key, value in result.items():
        print(f"{key:55s} {value:.4f}" if isinstance(value, float) else f"{key}: {json.dumps(value)}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "truth_ceiling.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
