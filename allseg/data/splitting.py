"""Splits a master dataset (Kaggle layout) into ALL/{train,test}/{original,segmented}/<Category>.

The master is only read: files are copied, never moved or changed. The split is seeded per
category (stratified), written as CSV, and can be reproduced from such a CSV.
"""
import csv
import io
from pathlib import Path

import numpy as np

from allseg.core.errors import DataError, UserError, first_few
from allseg.core.files import copy_file, set_aside, write_text
from allseg.data.pairing import find_pairs

SPLITS = ("train", "test")
SPLIT_CSV = "split.csv"
MINI_TEST_COUNT = 10


def master_categories(master, category):
    """The category names to split: one given name, or every folder under Original for 'all'."""
    original = Path(master) / "Original"
    if not original.is_dir() or not (Path(master) / "Segmented").is_dir():
        raise UserError(f"{master}: not a master dataset (expected the folders Original/<Category> "
                        "and Segmented/<Category>)")
    found = sorted(p.name for p in original.iterdir() if p.is_dir())
    if category == "all":
        if not found:
            raise DataError(f"{original}: no category folders")
        return found
    if category not in found:
        raise UserError(f"--category {category}: no such category in {original} "
                        f"(found: {', '.join(found) or 'none'}; or use --category all)")
    return [category]


def plan_split(pairs_by_category, train_ratio, seed):
    """{category: {"train": [pairs], "test": [pairs]}}, the same for the same seed."""
    plan = {}
    for index, (category, pairs) in enumerate(sorted(pairs_by_category.items())):
        order = np.random.default_rng([seed, index]).permutation(len(pairs))
        n_train = int(round(train_ratio * len(pairs)))
        plan[category] = {"train": sorted((pairs[i] for i in order[:n_train]), key=_name),
                          "test": sorted((pairs[i] for i in order[n_train:]), key=_name)}
    return plan


def _name(pair):
    return pair.image.name


def read_split_csv(path):
    """{filename: split} from a CSV with the columns split,filename (category optional)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise UserError(f"--split-csv {path}: file not found") from None
    if not rows or not {"split", "filename"} <= set(rows[0]):
        raise UserError(f"--split-csv {path}: needs the columns split,filename (and rows)")
    bad = [f"row {i + 2}: split = {r['split']!r}" for i, r in enumerate(rows)
           if r["split"] not in SPLITS]
    if bad:
        raise UserError(f"--split-csv {path}: split must be train or test; {first_few(bad)}")
    return {r["filename"]: r["split"] for r in rows}


def plan_from_csv(pairs_by_category, assignment, csv_path):
    plan, missing = {}, []
    known = set()
    for category, pairs in sorted(pairs_by_category.items()):
        plan[category] = {"train": [], "test": []}
        for pair in pairs:
            known.add(pair.image.name)
            split = assignment.get(pair.image.name)
            if split is None:
                missing.append(pair.image.name)
            else:
                plan[category][split].append(pair)
    unknown = sorted(set(assignment) - known)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"{len(missing)} master image(s) not in the CSV: {first_few(missing)}")
        if unknown:
            parts.append(f"{len(unknown)} CSV filename(s) not in the master: {first_few(unknown)}")
        raise DataError(f"--split-csv {csv_path} does not match the master: " + "; ".join(parts))
    return plan


def _non_empty(folder):
    folder = Path(folder)
    return folder.exists() and any(not p.name.startswith(".") for p in folder.iterdir())


def prepare_destination(folder, overwrite):
    """Refuse a non-empty folder, or with overwrite set its contents aside (never delete)."""
    if Path(folder).exists() and not Path(folder).is_dir():
        raise UserError(f"{folder} exists and is not a folder")
    if _non_empty(folder):
        if not overwrite:
            raise UserError(f"{folder} is not empty: choose another destination, or pass "
                            "--overwrite to move the existing one aside (nothing is deleted)")
        kept = set_aside(folder)
        print(f"Moved the existing {folder} aside to {kept}")
    Path(folder).mkdir(parents=True, exist_ok=True)


def write_split(plan, dest):
    """Copies each pair into dest/<split>/{original,segmented}/<category> and writes split.csv."""
    dest = Path(dest)
    rows = []
    for category, parts in plan.items():
        for split, pairs in parts.items():
            original = dest / split / "original" / category
            segmented = dest / split / "segmented" / category
            original.mkdir(parents=True, exist_ok=True)
            segmented.mkdir(parents=True, exist_ok=True)
            for pair in pairs:
                copy_file(pair.image, original / pair.image.name)
                copy_file(pair.mask, segmented / pair.mask.name)
                rows.append((split, category, pair.image.name))
            print(f"  {split:5s} {category}: {len(pairs)} pairs -> {original}")
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["split", "category", "filename"])
    writer.writerows(sorted(rows))
    write_text(dest / SPLIT_CSV, text.getvalue())
    return dest / SPLIT_CSV


def write_mini_test(plan, folder, seed, count=MINI_TEST_COUNT):
    """Copies ``count`` test originals, chosen with the seed, into ``folder``."""
    tests = sorted((p.image for parts in plan.values() for p in parts["test"]), key=lambda p: p.name)
    rng = np.random.default_rng([seed, 10_000])
    chosen = [tests[i] for i in sorted(rng.choice(len(tests), min(count, len(tests)), replace=False))]
    for image in chosen:
        copy_file(image, Path(folder) / image.name)
    return chosen


def split_master(master, dest, mini_test, category="Early", train_ratio=0.8, seed=42,
                 split_csv=None, overwrite=False):
    """The whole split; returns (plan, path of the written split CSV, mini-test files)."""
    categories = master_categories(master, category)
    for name, folder in (("--dest", dest), ("--mini-test", mini_test)):
        inside = Path(folder).resolve()
        if inside == Path(master).resolve() or Path(master).resolve() in inside.parents:
            raise UserError(f"{name} {folder} is inside the master {master}; the master is "
                            "never written to: choose a folder outside it")
    pairs_by_category = {c: find_pairs(Path(master) / "Original", Path(master) / "Segmented", c)
                         for c in categories}
    if split_csv:
        plan = plan_from_csv(pairs_by_category, read_split_csv(split_csv), split_csv)
    else:
        plan = plan_split(pairs_by_category, train_ratio, seed)
    if not any(parts["test"] for parts in plan.values()):
        raise UserError("the split leaves no test images: lower --train-ratio or add images")
    prepare_destination(dest, overwrite)
    prepare_destination(mini_test, overwrite)
    csv_path = write_split(plan, dest)
    chosen = write_mini_test(plan, mini_test, seed)
    return plan, csv_path, chosen

