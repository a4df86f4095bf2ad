"""The one per-image scorer, shared by the evaluator, fine-tuning's held-out images, the truth
audit and the export check: pixel overlap (Dice, IoU), cells matched one to one with boundary
scores, and nuclei (Dice, N:C error); and the pooled summaries of many images, in the style of
nnU-Net's summary.json.

Every score comes with the counts it was computed from, so a reader can redo the arithmetic.
Empty cases follow the pixel scores' rule: where there is nothing to find and nothing was found,
the score is 1 (a distance is 0); where only one side has cells, a ratio is 0 and a distance is
undefined (None, left out of the mean and counted apart). The blast call is scored per cell
(call_scores).
"""
import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from allseg.cells.instances import SPLIT_HOLE_PX, label_cells
from allseg.cells.matching import IOU_MATCH, joint_counts, match_cells, nc_errors

NSD_TOLERANCE = 2   # pixels; normalized surface Dice (Nikolov et al. 2021)


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


def mask_dice(pred, truth):
    """Dice of two boolean masks."""
    tp, fp, fn, _ = confusion(pred, truth)
    return dice(tp, fp, fn)


def pixel_scores(file, pred, truth):
    """One image's pixel counts, Dice and IoU."""
    tp, fp, fn, tn = confusion(pred, truth)
    return {"file": str(file), "dice": dice(tp, fp, fn), "iou": iou(tp, fp, fn),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def split_and_merging_cells(true_labels, pred_labels):
    """Why counts differ: a true cell is split when two or more predicted cells lie mostly (over
    half their pixels) inside it; a predicted cell is merging when two or more true cells lie mostly
    inside it. Majority makes each cell belong to at most one cell of the other side. Returns
    ({true label split: predicted cells inside}, {predicted label merging: true cells inside})."""
    joint = joint_counts(true_labels, pred_labels)
    inter = joint[1:, 1:]
    pred_inside = inter * 2 > joint[:, 1:].sum(0)[None, :]   # predicted cell j mostly in true i
    true_inside = inter * 2 > joint[1:, :].sum(1)[:, None]   # true cell i mostly in predicted j
    pieces_in_true, pieces_in_pred = pred_inside.sum(1), true_inside.sum(0)
    return ({int(i) + 1: int(pieces_in_true[i]) for i in np.flatnonzero(pieces_in_true >= 2)},
            {int(j) + 1: int(pieces_in_pred[j]) for j in np.flatnonzero(pieces_in_pred >= 2)})


def splits_and_merges(true_labels, pred_labels):
    """How many true cells are split and how many predicted cells merge true ones."""
    split, merging = split_and_merging_cells(true_labels, pred_labels)
    return {"split_true": len(split), "merged_pred": len(merging)}


def detection_scores(tp, fp, fn, iou_sum):
    """precision, recall, F1 and panoptic quality (F1 x mean IoU of the matched cells)."""
    denom = tp + 0.5 * fp + 0.5 * fn
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "f1": tp / denom if denom else 1.0,
        "panoptic_quality": iou_sum / denom if denom else 1.0,
        "matched_mean_iou": iou_sum / tp if tp else None,
    }


def surface(mask):
    """Boundary pixels: foreground pixels with a background 8-neighbour (or on the image edge)."""
    return mask & ~ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=0)


def surface_distances(a, b):
    """For every boundary pixel of mask a, the distance in pixels to the nearest boundary pixel
    of mask b (both non-empty)."""
    return ndimage.distance_transform_edt(~surface(b))[surface(a)]


def boundary_scores(pred, truth, tolerance=NSD_TOLERANCE):
    """(normalized surface Dice at `tolerance` pixels, HD95 in pixels) of two masks, from one
    pair of boundary distance maps."""
    if not pred.any() and not truth.any():
        return 1.0, 0.0
    if not pred.any() or not truth.any():
        return 0.0, None
    d_pred, d_truth = surface_distances(pred, truth), surface_distances(truth, pred)
    close = np.count_nonzero(d_pred <= tolerance) + np.count_nonzero(d_truth <= tolerance)
    # HD95: the larger of the two directed 95th-percentile distances
    hd95 = float(max(np.percentile(d_pred, 95), np.percentile(d_truth, 95)))
    return close / (d_pred.size + d_truth.size), hd95


def normalized_surface_dice(pred, truth, tolerance=NSD_TOLERANCE):
    """Share of both boundaries lying within `tolerance` pixels of the other boundary."""
    return boundary_scores(pred, truth, tolerance)[0]


def hausdorff95(pred, truth):
    """The larger of the two directed 95th-percentile boundary distances, in pixels."""
    return boundary_scores(pred, truth)[1]


def score_cells(pred_mask, truth_mask, min_area, split_depth=0.0, split_hole_px=SPLIT_HOLE_PX,
                true_labels=None):
    """Cell scores of one image; returns (row, true labels, predicted labels, match). The true
    cells are true_labels where the truth has its own (a lab's outlines), else the truth mask's
    cells counted as the predicted ones are."""
    if true_labels is None:
        true_labels = label_cells(truth_mask, min_area, split_depth, split_hole_px)
    pred_labels = label_cells(pred_mask, min_area, split_depth, split_hole_px)
    match = match_cells(true_labels, pred_labels)
    truth, pred = true_labels > 0, pred_labels > 0
    tp_px = int(np.count_nonzero(pred & truth))
    fp_px, fn_px = int(np.count_nonzero(pred)) - tp_px, int(np.count_nonzero(truth)) - tp_px
    nsd, hd95 = boundary_scores(pred, truth)
    row = {**{k: match[k] for k in ("n_true", "n_pred", "tp", "fp", "fn")},
           "iou_sum": round(match["iou_sum"], 6), **splits_and_merges(true_labels, pred_labels),
           **detection_scores(match["tp"], match["fp"], match["fn"], match["iou_sum"]),
           "dice": dice(tp_px, fp_px, fn_px), "tp_px": tp_px, "fp_px": fp_px, "fn_px": fn_px,
           "nsd_2px": nsd, "hd95": hd95}
    return row, true_labels, pred_labels, match


def summarize_cells(rows, min_area, split_depth, split_hole_px=SPLIT_HOLE_PX):
    """Pooled cell scores over images (counts summed first), with the per-image means beside."""
    def total(key):
        return sum(r[key] for r in rows)

    tp, fp, fn = total("tp"), total("fp"), total("fn")
    errors = np.array([r["n_pred"] - r["n_true"] for r in rows], float)
    hd = [r["hd95"] for r in rows if r["hd95"] is not None]
    return {
        "num_images": len(rows), "n_true": total("n_true"), "n_pred": total("n_pred"),
        "tp": tp, "fp": fp, "fn": fn, "iou_sum": round(total("iou_sum"), 6),
        "split_true": total("split_true"), "merged_pred": total("merged_pred"),
        **detection_scores(tp, fp, fn, total("iou_sum")),
        "mean_image_f1": float(np.mean([r["f1"] for r in rows])) if rows else None,
        "count_mae": float(np.abs(errors).mean()) if rows else None,
        "count_bias": float(errors.mean()) if rows else None,
        "dice": float(np.mean([r["dice"] for r in rows])) if rows else None,
        "pooled_dice": dice(total("tp_px"), total("fp_px"), total("fn_px")),
        "nsd_2px": float(np.mean([r["nsd_2px"] for r in rows])) if rows else None,
        "hd95": float(np.mean(hd)) if hd else None,
        "hd95_images": len(hd),
        "definition": {"min_area_px": min_area, "split_depth_px": split_depth,
                       "split_hole_px": split_hole_px,
                       "iou_match": IOU_MATCH, "nsd_tolerance_px": NSD_TOLERANCE,
                       "connectivity": 8},
    }


def score_nuclei(true_labels, true_nucleus, pred_labels, pred_nucleus, match):
    """One image's nucleus scores: pixel counts and Dice, and the N:C error of each matched
    cell (the one-to-one matching of whole cells)."""
    tp, fp, fn, _ = confusion(pred_nucleus, true_nucleus)
    return {"dice": dice(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn,
            "nc_errors": nc_errors(true_labels, true_nucleus, pred_labels, pred_nucleus,
                                   match["pairs"])}


def summarize_nuclei(rows):
    """Mean and pooled nucleus Dice over the images, and the mean N:C error over every matched
    cell (None without any), with the counts they come from."""
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    errors = [e for r in rows for e in r["nc_errors"]]
    return {"mean_dice": float(np.mean([r["dice"] for r in rows])), "pooled_dice": dice(tp, fp, fn),
            "nc_error_mean": float(np.mean(errors)) if errors else None,
            "matched_cells": len(errors)}


def score_image(file, pred, truth, cell_keys, true_labels=None, pred_nucleus=None,
                true_nucleus=None):
    """One image's row, as summary.json lists it: pixel scores of the masks, "cells" (cell_keys:
    [infer]'s min_area, split_depth, split_hole_px at the image's scale) and, where both sides
    have nuclei, "nucleus". Returns (row, true labels, predicted labels, match)."""
    cells, true_labels, pred_labels, match = score_cells(pred, truth, *cell_keys,
                                                         true_labels=true_labels)
    row = {**pixel_scores(file, pred, truth), "cells": cells}
    if pred_nucleus is not None and true_nucleus is not None:
        row["nucleus"] = score_nuclei(true_labels, true_nucleus, pred_labels, pred_nucleus, match)
    return row, true_labels, pred_labels, match


def summarize_images(rows, cell_keys, loss=None, binary_accuracy=None):
    """The pooled summary of score_image rows: pixels, "cells" and, with nuclei, "nuclei"."""
    summary = summarize(rows, loss, binary_accuracy)
    summary["cells"] = summarize_cells([r["cells"] for r in rows], *cell_keys)
    nuclei = [r["nucleus"] for r in rows if "nucleus" in r]
    if nuclei:
        summary["nuclei"] = summarize_nuclei(nuclei)
    return summary


def call_scores(is_blast, probability, threshold=0.5):
    """How well per-cell blast probabilities separate the labelled cells: ROC AUC (0.5: no
    better than chance), and at the threshold the sensitivity (blasts called blasts),
    specificity (normal cells called normal) and their mean, the balanced accuracy."""
    truth = np.asarray(is_blast, bool)
    called = np.asarray(probability) >= threshold
    sensitivity = float(called[truth].mean()) if truth.any() else float("nan")
    specificity = float((~called[~truth]).mean()) if (~truth).any() else float("nan")
    both = truth.any() and (~truth).any()
    return {"cells": int(truth.size), "blasts": int(truth.sum()),
            "auc": float(roc_auc_score(truth, probability)) if both else float("nan"),
            "balanced_accuracy": (sensitivity + specificity) / 2, "sensitivity": sensitivity,
            "specificity": specificity}
