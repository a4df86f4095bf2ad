"""Checks each ground-truth mask against its own image, so truth that the colour threshold got
wrong can be seen, counted and (when a config asks) left out of training and scoring.

The yardstick is a stain rule: cells stained violet to magenta have red and blue well above green
in every category's smears, while red cells and background are near grey or pink. Its outlines
are the "visible cells" the cross-category benchmark also scores against (checked by eye there).
"""
import csv
import io
from collections import Counter
from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi

from allseg.cells.instances import remove_small_components
from allseg.cells.scoring import mask_dice
from allseg.core.errors import DataError
from allseg.data.images import read_mask, read_rgb

STAIN_FLOOR = 40        # (R + B) / 2 - G above this is stained nucleus or cytoplasm
STAIN_MIN_AREA = 150    # smaller stained regions are platelets and debris, not cells

# Why a pair is flagged, in the order they are checked; the thresholds were chosen on the
# galleries benchmarks/truth_audit.py draws (README, "Results on real data").
NEAR_EMPTY_TRUTH, NEAR_EMPTY_STAIN = 0.01, 0.02
HOLLOW_FRACTION = 0.15
DISAGREE_DICE, DISAGREE_MIN_STAIN = 0.5, 0.01
REASONS = {
    "near_empty": f"truth under {NEAR_EMPTY_TRUTH:.0%} of the image while the stain rule finds "
                  f"{NEAR_EMPTY_STAIN:.0%} or more",
    "hollow": f"over {HOLLOW_FRACTION:.0%} of the area inside the truth's outlines is holes",
    "disagrees": f"Dice between truth and stain rule under {DISAGREE_DICE} "
                 f"(where the rule finds {DISAGREE_MIN_STAIN:.0%} or more)",
}


def stain_score(rgb):
    """(R + B) / 2 - G per pixel, as float32: high on violet and magenta stain."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    return (r + b) / 2 - g


def stained_cells(rgb):
    """Boolean mask of the stained cells the rule sees: thresholded, smoothed, holes filled,
    specks dropped."""
    mask = stain_score(rgb) > STAIN_FLOOR
    mask = ndi.binary_opening(mask, structure=np.ones((3, 3), bool), iterations=1)
    mask = ndi.binary_fill_holes(ndi.binary_closing(mask, structure=np.ones((3, 3), bool)))
    return remove_small_components(mask, STAIN_MIN_AREA)


def training_truth(rgb, mask_path, truth):
    """The mask training takes for a pair (Pair.truth): its file ("mask"), the stain rule's
    cells in its image ("stain"), or the union of both ("mask+stain")."""
    if truth == "stain":
        return stained_cells(rgb)
    mask = read_mask(mask_path)
    if truth == "mask+stain":
        return mask | stained_cells(rgb)
    if truth != "mask":
        raise ValueError(f"unknown truth source {truth!r}")
    return mask


def audit_masks(rgb, truth):
    """The measures and the reasons (possibly none) for one image and its truth mask."""
    stain = stained_cells(rgb)
    filled = ndi.binary_fill_holes(truth)
    row = {"truth_fraction": float(truth.mean()), "stain_fraction": float(stain.mean()),
           "hole_fraction": float((filled & ~truth).sum() / max(int(filled.sum()), 1)),
           "stain_dice": mask_dice(truth, stain)}
    reasons = []
    if row["truth_fraction"] < NEAR_EMPTY_TRUTH and row["stain_fraction"] >= NEAR_EMPTY_STAIN:
        reasons.append("near_empty")
    if row["hole_fraction"] > HOLLOW_FRACTION:
        reasons.append("hollow")
    if row["stain_dice"] < DISAGREE_DICE and row["stain_fraction"] >= DISAGREE_MIN_STAIN:
        reasons.append("disagrees")
    row["reasons"] = reasons
    return row


def audit_pairs(pairs, progress=None):
    """One row per pair (file, category, measures, reasons); progress(i, n) after each."""
    rows = []
    for i, pair in enumerate(pairs):
        row = audit_masks(read_rgb(pair.image), read_mask(pair.mask))
        rows.append({"file": pair.image.name, "category": pair.category, **row})
        if progress:
            progress(i + 1, len(pairs))
    return rows


def flagged_counts(rows):
    """{category: Counter(reason -> pairs)} over the flagged rows (a pair may have several)."""
    counts = {}
    for row in rows:
        for reason in row["reasons"]:
            counts.setdefault(row["category"], Counter())[reason] += 1
    return counts


def describe_left_out(rows, total):
    """A line per category saying how many pairs were left out and why."""
    left = [r for r in rows if r["reasons"]]
    lines = [f"Left out {len(left)} of {total} pairs whose truth the audit flags:"]
    for category, counter in sorted(flagged_counts(rows).items()):
        n = sum(1 for r in left if r["category"] == category)
        why = ", ".join(f"{reason} {k}" for reason, k in sorted(counter.items()))
        lines.append(f"  {category or '(no category)'}: {n} ({why})")
    return "\n".join(lines)


def audit_csv(rows):
    columns = ["file", "category", "truth_fraction", "stain_fraction", "hole_fraction",
               "stain_dice", "reasons"]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()
                            if k != "reasons"}, "reasons": ";".join(row["reasons"])})
    return out.getvalue()


def trusted_pairs(pairs, what, repair=False):
    """The pairs whose truth the audit does not flag, after printing how many of `what` (e.g.
    "training") were left out, per category and reason. With repair, the flagged pairs stay,
    marked to train on the stain rule's cells instead of their mask."""
    print(f"Auditing the truth of {len(pairs)} {what} pairs ...", flush=True)
    rows = audit_pairs(pairs)
    text = describe_left_out(rows, len(pairs)).replace("pairs whose", f"{what} pairs whose", 1)
    if repair:
        print(text.replace("Left out", "Repaired (truth = the stain rule's cells)", 1))
        return [replace(pair, truth="stain") if row["reasons"] else pair
                for pair, row in zip(pairs, rows)]
    print(text)
    kept = [pair for pair, row in zip(pairs, rows) if not row["reasons"]]
    if not kept:
        raise DataError(f"the truth audit flags all {len(pairs)} {what} pairs: set "
                        "skip_flagged_truth = False, or check the masks (benchmarks/truth_audit.py "
                        "draws what it flags)")
    return kept


def add_stained_cells(pairs, categories, what):
    """The pairs, those of the given categories marked to train on their mask plus the stain
    rule's cells (pale cells the colour threshold left out, hollow rings filled); pairs already
    repaired keep the stain rule alone. Prints how many of `what` were marked, per category."""
    out = [replace(p, truth="mask+stain") if p.category in categories and p.truth == "mask" else p
           for p in pairs]
    marked = Counter(p.category for p in out if p.truth == "mask+stain")
    print(f"Added the stain rule's cells to the truth of {sum(marked.values())} of {len(pairs)} "
          f"{what} pairs" + "".join(f"\n  {c}: {n}" for c, n in sorted(marked.items())), flush=True)
    present = {p.category for p in pairs}
    for name in sorted(set(categories) - present):  # a misspelt name would change nothing, silently
        print(f"  add_stained_cells names {name!r}, but no {what} pair is of that category "
              f"(categories here: {', '.join(sorted(present))})", flush=True)
    return out
