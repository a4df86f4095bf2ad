"""Audits the dataset's truth, pair by pair, against the stain rule; lists and draws what it flags.

Every pair of every category under --data (Kaggle layout) is checked by allseg/data/truth_audit.py.
Writes benchmarks/results/truth_audit.csv (every pair: measures and reasons; file names only) and
a per-category table (truth_audit.md), and draws a gallery per reason: with each smear in front
in the scratch folder (dataset images are never copied into the project), and as masks only,
truth | stain rule, in asset/.
"""
from collections import Counter

import numpy as np

from common import DATA, as_rgb, caption, parse, parser, write_pictures, write_results

from allseg.data.images import read_mask, read_rgb  # noqa: E402  (common: the project on sys.path)
from allseg.data.pairing import find_category_pairs  # noqa: E402
from allseg.data.truth_audit import REASONS, audit_csv, audit_pairs, stained_cells  # noqa: E402
from allseg.core.files import write_text  # noqa: E402

GALLERY_ROWS = 6


def table(rows):
    lines = ["| category | pairs | truth foreground, median | stain rule foreground, median | "
             "holes inside truth outlines, median | Dice truth vs stain rule, median | flagged | "
             + " | ".join(REASONS) + " |", "|---" * (7 + len(REASONS)) + "|"]
    for category in sorted({r["category"] for r in rows}):
        some = [r for r in rows if r["category"] == category]
        med = lambda k: np.median([r[k] for r in some])  # noqa: E731
        counts = Counter(reason for r in some for reason in r["reasons"])
        flagged = sum(1 for r in some if r["reasons"])
        lines.append(f"| {category} | {len(some)} | {med('truth_fraction'):.1%} | "
                     f"{med('stain_fraction'):.1%} | {med('hole_fraction'):.1%} | "
                     f"{med('stain_dice'):.2f} | {flagged} ({flagged / len(some):.0%}) | "
                     + " | ".join(str(counts[r]) for r in REASONS) + " |")
    return "\n".join(lines)


def gallery(rows, pairs_by_file, reason, public_path, private_path):
    """GALLERY_ROWS flagged pairs, spread over the categories that have them: image | truth |
    stain rule (private) and truth | stain rule (public)."""
    by_category = {}
    for r in rows:
        if reason in r["reasons"]:
            by_category.setdefault(r["category"], []).append(r)
    chosen = []
    while len(chosen) < GALLERY_ROWS and any(by_category.values()):
        for category in sorted(by_category):
            some = by_category[category]
            if some and len(chosen) < GALLERY_ROWS:
                chosen.append(some.pop(len(some) // 2))  # from the middle, not the extremes
    pictures = []
    for r in chosen:
        pair = pairs_by_file[r["file"]]
        rgb = read_rgb(pair.image)
        row = np.concatenate([as_rgb(read_mask(pair.mask)), as_rgb(stained_cells(rgb))], axis=1)
        text = (f"{r['category']} {r['file'][-12:]} truth {r['truth_fraction']:.1%} rule "
                f"{r['stain_fraction']:.1%} holes {r['hole_fraction']:.0%} "
                f"Dice {r['stain_dice']:.2f}")
        pictures.append((rgb, caption(row, text, 0.38)))
    write_pictures(pictures, public_path, private_path)
    return [r["file"] for r in chosen]


def main():
    args = parse(parser(__doc__, data=DATA / "leukemia-all", scratch="truth_audit"))
    if not (args.data / "Original").is_dir():
        raise SystemExit(f"{args.data}: no Original/ folder there; pass --data with the dataset")

    pairs = find_category_pairs(args.data / "Original", args.data / "Segmented", "all")
    print(f"Auditing {len(pairs)} pairs in {args.data}")
    rows = audit_pairs(pairs, progress=lambda i, n: print(f"\r{i}/{n}", end="", flush=True)
                       if i % 200 == 0 or i == n else None)
    print()
    text = table(rows) + "\n\n" + "\n".join(f"- {r}: {why}" for r, why in REASONS.items())
    print(text)
    write_text(args.out / "truth_audit.csv", audit_csv(rows))
    by_file = {p.image.name: p for p in pairs}
    shown = {reason: gallery(rows, by_file, reason, args.assets / f"truth_audit_{reason}.png",
                             args.scratch / f"truth_audit_{reason}_with_images.png")
             for reason in REASONS}
    write_results(args.out / "truth_audit", {"data": str(args.data), "pairs": len(pairs),
                                             "reasons": REASONS, "galleries": shown}, text)
    print(f"Wrote {args.out / 'truth_audit.csv'}, truth_audit.md, galleries in {args.assets} "
          f"(masks only) and {args.scratch} (with the images)")


if __name__ == "__main__":
    main()
