"""Write a synthetic master dataset (Kaggle layout: Original/<Category>, Segmented/<Category>).

    python make_synthetic_master.py --out DIR [--per-category N] [--seed S]
"""
import argparse
import time
from pathlib import Path

from allseg.core.cli import run
from allseg.core.errors import UserError
from allseg.core.files import set_aside
from allseg.data.synthetic import CATEGORIES, write_master


def main(args):
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty: choose a new folder (nothing there is overwritten)")
    start = time.perf_counter()
    # Written under a temporary name and renamed at the end: an interrupted run leaves no
    # half-made master that a later step could mistake for a whole one.
    partial = out.with_name(f".{out.name}.partial")
    if partial.exists():
        set_aside(partial)
    write_master(partial, args.per_category, args.seed,
                 progress=lambda c, n: print(f"  {c}: {n} smears"))
    if out.exists():
        out.rmdir()  # empty, checked above
    partial.rename(out)
    print(f"Wrote {args.per_category * len(CATEGORIES)} synthetic image pairs (seed {args.seed}) to "
          f"{out}/Original and {out}/Segmented in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--per-category", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.per_category < 1:
        parser.error("--per-category must be at least 1")
    run(main, args)
