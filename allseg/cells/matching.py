"""True and predicted cells matched one to one by their overlap, from two label images: what
the evaluator scores and what fine-tuning compares its models by."""
import numpy as np
from scipy.optimize import linear_sum_assignment

IOU_MATCH = 0.5     # a true and a predicted cell are the same cell at this IoU or more


def joint_counts(true_labels, pred_labels):
    """Pixels shared by true label i (row) and predicted label j (column), background 0 included."""
    n_true, n_pred = int(true_labels.max()), int(pred_labels.max())
    return np.bincount(true_labels.ravel().astype(np.int64) * (n_pred + 1) + pred_labels.ravel(),
                       minlength=(n_true + 1) * (n_pred + 1)).reshape(n_true + 1, n_pred + 1)


def iou_matrix(true_labels, pred_labels):
    """IoU of every true cell (rows) with every predicted cell (columns); labels 1..n."""
    joint = joint_counts(true_labels, pred_labels)
    inter = joint[1:, 1:]
    union = joint[1:, :].sum(1)[:, None] + joint[:, 1:].sum(0)[None, :] - inter
    return inter / np.maximum(union, 1)


def match_cells(true_labels, pred_labels, threshold=IOU_MATCH):
    """One-to-one matching that maximizes the summed IoU over pairs with IoU >= threshold
    (Hungarian assignment). Returns counts, the matched pairs and their IoUs."""
    iou = iou_matrix(true_labels, pred_labels)
    n_true, n_pred = iou.shape
    eligible = np.where(iou >= threshold, iou, 0.0)
    rows, cols = linear_sum_assignment(eligible, maximize=True) if iou.size else ([], [])
    pairs = [(int(r) + 1, int(c) + 1, float(iou[r, c])) for r, c in zip(rows, cols)
             if iou[r, c] >= threshold]
    tp = len(pairs)
    return {"n_true": n_true, "n_pred": n_pred, "tp": tp, "fp": n_pred - tp, "fn": n_true - tp,
            "iou_sum": sum(p[2] for p in pairs), "pairs": pairs}


def nc_ratios(labels, nucleus):
    """Each cell's nucleus area over its area (N:C as the cells table gives it), indexed by
    label (index 0, the background, unused)."""
    areas = np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)
    inside = np.bincount(labels[nucleus], minlength=len(areas))
    return inside / np.maximum(areas, 1)


def nc_errors(true_labels, true_nucleus, pred_labels, pred_nucleus, pairs):
    """|predicted - true| N:C ratio of each matched pair of cells (match_cells' pairs)."""
    true_nc, pred_nc = nc_ratios(true_labels, true_nucleus), nc_ratios(pred_labels, pred_nucleus)
    return [float(abs(pred_nc[p] - true_nc[t])) for t, p, _ in pairs]
