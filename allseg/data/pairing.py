"""Pairs original images with their segmented masks by file stem, and checks they read."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from allseg.core.errors import DataError, UserError, first_few
from allseg.data.images import list_images, read_rgb


@dataclass(frozen=True)
class Pair:
    image: Path
    mask: Path
    category: str = ""
    # What training takes as this pair's truth (allseg/data/truth_audit.py): "mask" (the file),
    # "stain" (the stain rule's cells instead) or "mask+stain" (the union of both).
    truth: str = "mask"


def _category_folder(root, category, role):
    folder = Path(root) / category
    if not folder.is_dir():
        known = sorted(p.name for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []
        hint = f" (categories there: {', '.join(known)})" if known else ""
        raise DataError(f"{role} folder not found: {folder}{hint}")
    return folder


def files_by_stem(files, folder):
    stems = {}
    clashes = []
    for f in files:
        if f.stem in stems:
            clashes.append(f"{stems[f.stem].name} / {f.name}")
        stems[f.stem] = f
    if clashes:
        raise DataError(f"{folder}: several files share a name stem, so pairing is ambiguous: "
                        f"{first_few(clashes)}")
    return stems


def find_pairs(image_dir, mask_dir, category):
    """Pairs ``image_dir/category/*`` with ``mask_dir/category/*`` by file stem."""
    image_folder = _category_folder(image_dir, category, "image")
    mask_folder = _category_folder(mask_dir, category, "mask")
    images = files_by_stem(list_images(image_folder), image_folder)
    masks = files_by_stem(list_images(mask_folder), mask_folder)
    if not images:
        raise DataError(f"{image_folder}: no images (jpg, jpeg, png, bmp, tif)")
    problems = [f"image without mask: {images[s]}" for s in sorted(images.keys() - masks.keys())]
    problems += [f"mask without image: {masks[s]}" for s in sorted(masks.keys() - images.keys())]
    if problems:
        raise DataError(f"{len(problems)} unpaired file(s) in {image_folder} / {mask_folder}: "
                        f"{first_few(problems)}")
    return [Pair(images[s], masks[s], category) for s in sorted(images)]


def category_names(image_dir, spec):
    """The category folders a config's ``category`` names: one, a list, or "all" (every
    folder under image_dir, sorted)."""
    if spec == "all":
        root = Path(image_dir)
        found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not found:
            raise DataError(f'category = "all": no category folders in {root}')
        return found
    return list(spec) if isinstance(spec, list) else [spec]


def find_category_pairs(image_dir, mask_dir, spec):
    """The pairs of every category the spec names, category by category."""
    return [pair for name in category_names(image_dir, spec)
            for pair in find_pairs(image_dir, mask_dir, name)]


def describe(image_dir, spec):
    names = category_names(image_dir, spec)
    return str(Path(image_dir) / names[0]) if len(names) == 1 else f"{image_dir} ({', '.join(names)})"


def check_readable(pairs):
    """Decode every file once so a bad one stops the run now, not mid-epoch."""
    problems = []
    for pair in pairs:
        try:
            image_shape = read_rgb(pair.image).shape[:2]
            mask_shape = read_rgb(pair.mask).shape[:2]
        except UserError as exc:
            problems.append(str(exc))
            continue
        if image_shape != mask_shape:
            problems.append(f"{pair.mask}: size {mask_shape[1]}x{mask_shape[0]} differs from its "
                            f"image's {image_shape[1]}x{image_shape[0]}")
    if problems:
        raise DataError(f"{len(problems)} unusable file(s): {first_few(problems, 3)}")


def split_pairs(pairs, fraction, seed):
    """A seeded, shuffled (train, validation) split; both parts non-empty."""
    n_val = int(round(len(pairs) * fraction))
    if n_val < 1 or n_val >= len(pairs):
        raise DataError(f"validation_split = {fraction} of {len(pairs)} pairs leaves "
                        f"{n_val} for validation and {len(pairs) - n_val} for training; "
                        "need at least one of each (add images or change validation_split)")
    order = np.random.default_rng(seed).permutation(len(pairs))
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [pairs[i] for i in train], [pairs[i] for i in val]
