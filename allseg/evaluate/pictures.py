"""Pictures of an evaluation: score histograms and the worst images, cell by cell."""
import cv2
import matplotlib
import numpy as np
from scipy import ndimage

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402

from allseg.core.files import replace_atomically  # noqa: E402
from allseg.data.images import write_png  # noqa: E402

MISSED = (255, 40, 40)    # a true cell no predicted cell matched
FALSE = (0, 220, 255)     # a predicted cell that matched no true cell
MATCHED = (60, 220, 60)
GALLERY_TILE = 224


def histograms(rows, path):
    """Per-image pixel Dice and cell F1, side by side, with their means marked."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.4), dpi=100)
    for ax, values, name in ((axes[0], [r["dice"] for r in rows], "pixel Dice"),
                             (axes[1], [r["cells"]["f1"] for r in rows], "cell F1")):
        ax.hist(values, bins=np.linspace(min(0.5, min(values)), 1.0, 41), color="#6a4c93")
        ax.axvline(np.mean(values), color="k", linestyle="--", label=f"mean {np.mean(values):.3f}")
        ax.set_xlabel(f"per-image {name}")
        ax.set_ylabel("images")
        ax.legend(loc="upper left")
    fig.suptitle(f"{len(rows)} evaluation images")
    fig.tight_layout()
    with replace_atomically(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _outline(canvas, labels, ids, colour, fill=False):
    boxes = ndimage.find_objects(labels)
    for cell in ids:
        ys, xs = boxes[cell - 1]
        one = (labels[ys, xs] == cell).astype(np.uint8)
        if fill:
            view = canvas[ys, xs]
            view[one > 0] = (0.5 * view[one > 0] + 0.5 * np.array(colour)).astype(np.uint8)
        contours, _ = cv2.findContours(one, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                       offset=(xs.start, ys.start))
        cv2.drawContours(canvas, contours, -1, colour, 1)


def error_row(rgb, true_labels, pred_labels, match, title):
    """image | truth (missed cells filled red) | prediction (false cells filled cyan)."""
    matched_true = {t for t, _, _ in match["pairs"]}
    matched_pred = {p for _, p, _ in match["pairs"]}
    truth = np.zeros_like(rgb)
    truth[true_labels > 0] = (255, 255, 255)
    _outline(truth, true_labels, matched_true, MATCHED)
    _outline(truth, true_labels, set(range(1, true_labels.max() + 1)) - matched_true, MISSED, True)
    pred = np.zeros_like(rgb)
    pred[pred_labels > 0] = (255, 255, 255)
    _outline(pred, pred_labels, matched_pred, MATCHED)
    _outline(pred, pred_labels, set(range(1, pred_labels.max() + 1)) - matched_pred, FALSE, True)
    tiles = [cv2.resize(t, (GALLERY_TILE, GALLERY_TILE), interpolation=cv2.INTER_NEAREST)
             for t in (rgb, truth, pred)]
    row = np.concatenate(tiles, axis=1)
    bar = np.full((18, row.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, row], axis=0)


def worst_gallery(entries, path):
    """entries: (file, rgb, true labels, predicted labels, match, cell row), worst first."""
    rows = [error_row(rgb, t, p, m, f"{file}: cell F1 {r['f1']:.2f}, {r['n_true']} true, "
                                    f"{r['n_pred']} predicted, {r['fn']} missed (red), "
                                    f"{r['fp']} false (cyan)")
            for file, rgb, t, p, m, r in entries]
    write_png(path, np.concatenate(rows, axis=0))
