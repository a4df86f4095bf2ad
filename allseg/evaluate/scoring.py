"""Per-image and pooled overlap scores on boolean masks, in the style of nnU-Net's summary."""
import numpy as np


def confusion(pred: np.ndarray, truth: np.ndarray):
    """(tp, fp, fn, tn) pixel counts of two boolean masks of the same shape."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return tp, fp, fn, int(pred.size) - tp - fp - fn


def dice(tp, fp, fn):
    """1.0 where truth and prediction are both empty: nothing to find, nothing wrongly found."""
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 1.0


def iou(tp, fp, fn):
    denom = tp + fp + fn
    return tp / denom if denom else 1.0


def summarize(per_image, loss=None, binary_accuracy=None):
    """The summary.json content from per-image rows {"file", "tp", "fp", "fn", "tn"}."""
    tp, fp, fn, tn = (sum(r[k] for r in per_image) for k in ("tp", "fp", "fn", "tn"))
    dices = np.array([r["dice"] for r in per_image], dtype=float)
    ious = np.array([r["iou"] for r in per_image], dtype=float)
    return {
        "num_images": len(per_image),
        "mean_dice": float(dices.mean()),
        "median_dice": float(np.median(dices)),
        "p10_dice": float(np.percentile(dices, 10)),
        "mean_iou": float(ious.mean()),
        "pooled_dice": dice(tp, fp, fn),
        "pooled_iou": iou(tp, fp, fn),
        "pixel_accuracy": (tp + tn) / (tp + fp + fn + tn),
        "precision": tp / (tp + fp) if tp + fp else 1.0 if not fn else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "loss": loss,
        "binary_accuracy": binary_accuracy,
        "per_image": per_image,
    }


def score_image(file, pred, truth):
    tp, fp, fn, tn = confusion(pred, truth)
    return {"file": str(file), "dice": dice(tp, fp, fn), "iou": iou(tp, fp, fn),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}
