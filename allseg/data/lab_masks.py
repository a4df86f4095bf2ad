"""A lab's own masks, in whichever of the usual formats it keeps them, read into one form.

For each image: an int32 cell label image (0 background, 1..n the cells) and a boolean nucleus
mask, or None where the format has no nuclei. Each format is a class in the registry of
allseg/data/mask_formats.py (binary, three-level 0/128/255, instance labels, QuPath GeoJSON,
Cellpose masks); a mask's name says which formats may take it, and a raster mask's dtype and
values say which of them it is.

Masks are matched to images by file stem, in one of two layouts:

- a folder of masks of its own: ``a.png`` (or ``a.tif``, ``a.geojson``, ``a_masks.png``,
  ``a_cp_masks.png``, ``a_seg.npy``) is the mask of the image ``a.png`` (or .jpg, .tif ...);
- Cellpose's layout, no mask folder given (or the images' one): each mask lies beside its image,
  named ``a_masks.png``, ``a_cp_masks.png`` (or .tif) or ``a_seg.npy``, and files named so are
  never taken for images, nor are the flows and figures Cellpose writes there.

A mask with no cell is kept: its image teaches what background looks like.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from allseg.core.errors import DataError, UserError, first_few
# BINARY ... DESCRIPTIONS, detect_mask_format and read_mask_values are imported from here by
# other modules and the tests: the formats moved to mask_formats.py, their names stayed.
from allseg.data.mask_formats import (BINARY, CELLPOSE, DESCRIPTIONS, GEOJSON, LABELS,  # noqa: F401
                                      THREE_LEVEL, RasterMaskFormat, detect_mask_format,
                                      detect_raster_format, format_named, formats_taking,
                                      is_named_as_mask, mask_suffixes, possible_image_stems,
                                      read_mask_values, suffix_after_stem)
from allseg.data.images import list_images, read_rgb
from allseg.data.pairing import files_by_stem

# Files Cellpose writes beside an image that are neither image nor mask (its figures, flows and
# probabilities); its own search for images passes them over too.
CELLPOSE_BY_PRODUCTS = ("_cp_output", "_flows", "_flows_0", "_flows_1", "_flows_2", "_cellprob")
CELLPOSE_NAMES = "<name>_masks.png, <name>_cp_masks.png or <name>_seg.npy"


@dataclass(frozen=True, eq=False)
class LabMask:
    image: Path
    mask: Path
    format: str
    labels: np.ndarray          # int32: 0 background, 1..n the cells
    nucleus: np.ndarray | None  # bool, or None where the format has no nuclei

    @property
    def cells(self) -> int:
        return int(self.labels.max())


# ---- one mask file ---------------------------------------------------------------------------

def _check_size(shape, mask_path, image_path, height, width):
    if shape != (height, width):
        raise DataError(f"{mask_path}: size {shape[1]}x{shape[0]} differs from its "
                        f"image's {width}x{height} ({image_path})")


def read_lab_mask(image_path, mask_path, size=None) -> LabMask:
    """One image's cells from its mask file, at the image's size (height, width; read from the
    image when not given): a raster mask must have it, a QuPath GeoJSON is drawn at it. The
    formats that may take the file are those registered for what follows the image's stem in its
    name; of raster ones, the first that recognises its values reads it."""
    image_path, mask_path = Path(image_path), Path(mask_path)
    height, width = size or read_rgb(image_path).shape[:2]
    formats = formats_taking(suffix_after_stem(mask_path, image_path.stem))
    if not formats:
        raise DataError(f"{mask_path}: not a mask file of a known format (names ending "
                        f"{first_few(mask_suffixes(), 8)})")
    if isinstance(formats[0], RasterMaskFormat):
        values = read_mask_values(mask_path)
        _check_size(values.shape, mask_path, image_path, height, width)
        mask_format = detect_raster_format(values, mask_path, formats)
        labels, nucleus = mask_format.cells(values)
    else:
        mask_format = formats[0]
        labels, nucleus = mask_format.read(mask_path, height, width)
        _check_size(labels.shape, mask_path, image_path, height, width)
    return LabMask(image_path, mask_path, mask_format.name, labels, nucleus)


def _description(format_name):
    mask_format = format_named(format_name)
    return mask_format.description if mask_format else format_name


def read_cell_and_nucleus(image_path, mask_path, size=None) -> np.ndarray:
    """(H, W, 2) bool, whole cells and their nuclei (kept inside them), from a mask that carries
    nuclei: three-level or QuPath GeoJSON. Any other is refused naming the file: a model of
    whole cells and nuclei cannot learn nuclei from it."""
    lab = read_lab_mask(image_path, mask_path, size)
    if lab.nucleus is None:
        raise DataError(f"{lab.mask}: {_description(lab.format)}, so no nuclei to "
                        "learn; with "
                        "[model] num_classes = 2 each mask must carry them: three-level "
                        "(0 background, 128 cytoplasm, 255 nucleus) or QuPath GeoJSON")
    cell = lab.labels > 0
    return np.stack([cell, lab.nucleus & cell], axis=-1)


# ---- a folder of them ------------------------------------------------------------------------

def _folder(path, role):
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{role} folder not found: {folder}")
    return folder


def _is_by_product(path):
    return path.stem.lower().endswith(CELLPOSE_BY_PRODUCTS)


def list_mask_files(folder, images=()):
    """Files directly in ``folder`` that a registered format takes (raster masks, QuPath
    GeoJSON, Cellpose _seg.npy, and JPEGs, which are refused when read), sorted by name; hidden
    files, Cellpose's by-products and the ``images`` passed over."""
    suffixes, images = tuple(mask_suffixes()), set(images)
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p not in images
                  and p.name.lower().endswith(suffixes) and not _is_by_product(p))


def list_layout_images(folder):
    """The images of a folder in Cellpose's layout: its image files less those whose name says
    they are masks (``a_masks.png``) and Cellpose's by-products."""
    return [p for p in list_images(folder) if not is_named_as_mask(p) and not _is_by_product(p)]


def _is_layout(image_folder, mask_dir):
    """Whether masks lie beside the images: no mask folder given, or the images' own."""
    return mask_dir is None or Path(mask_dir).resolve() == image_folder.resolve()


def match_masks(images, masks):
    """({image stem: [its masks]}, [masks of no image], [problems]): a mask belongs to the image
    whose stem its name begins with, followed by a registered suffix; one that could belong to
    two images is a problem."""
    by_image, orphans, problems = {stem: [] for stem in images}, [], []
    for mask in masks:
        owners = sorted(possible_image_stems(mask) & images.keys())
        if len(owners) == 1:
            by_image[owners[0]].append(mask)
        elif owners:
            problems.append(f"{mask} may be the mask of "
                            f"{' or of '.join(images[stem].name for stem in owners)}")
        else:
            orphans.append(mask)
    problems += [f"several masks for {images[stem]}: {', '.join(m.name for m in found)}"
                 for stem, found in sorted(by_image.items()) if len(found) > 1]
    return by_image, orphans, problems


def _no_masks(mask_folder, layout):
    if layout:
        return (f"{mask_folder}: no masks beside the images; Cellpose's layout names each "
                f"image's mask {CELLPOSE_NAMES}; if the masks are in a folder of their own, "
                "give that folder")
    return (f"{mask_folder}: no masks (png, tif, tiff or bmp masks, QuPath .geojson files or "
            "Cellpose _seg.npy files)")


def pair_lab_masks(image_dir, mask_dir=None):
    """[(image, mask)] matched by file stem, sorted by stem: masks in a folder of their own, or
    with ``mask_dir`` None (or the images' folder) beside their images in Cellpose's layout.
    An empty folder, an image without a mask or with several, or a mask without an image is a
    DataError naming them."""
    image_folder = _folder(image_dir, "image")
    layout = _is_layout(image_folder, mask_dir)
    mask_folder = image_folder if layout else _folder(mask_dir, "mask")
    found = list_layout_images(image_folder) if layout else list_images(image_folder)
    images = files_by_stem(found, image_folder)
    if not images:
        raise DataError(f"{image_folder}: no images (png, tif, tiff, bmp, jpg)")
    masks = list_mask_files(mask_folder, images.values())
    if not masks:
        raise DataError(_no_masks(mask_folder, layout))
    where = str(image_folder) if layout else f"{image_folder} / {mask_folder}"
    by_image, orphans, ambiguous = match_masks(images, masks)
    if ambiguous:
        raise DataError(f"{len(ambiguous)} ambiguous pairing(s) in {where}; keep one mask per "
                        f"image: {first_few(ambiguous)}")
    problems = [f"image without mask: {images[s]}" for s in sorted(images) if not by_image[s]]
    problems += [f"mask without image: {mask}" for mask in orphans]
    if problems:
        hint = f" (Cellpose's layout: each image's mask beside it, {CELLPOSE_NAMES})"
        raise DataError(f"{len(problems)} unpaired file(s) in {where}{hint if layout else ''}: "
                        f"{first_few(problems)}")
    return [(images[s], by_image[s][0]) for s in sorted(images)]


def formats_found(lab_masks):
    """{format: the first mask of it} over the masks with cells: a mask of background only fits
    every format."""
    found = {}
    for lab_mask in lab_masks:
        if lab_mask.cells:
            found.setdefault(lab_mask.format, lab_mask.mask)
    return found


def check_one_format(lab_masks, mask_dir):
    """A folder must hold one format, so every image is read the same way (and either all have
    nuclei or none): mixed ones are a DataError naming a file of each."""
    found = formats_found(lab_masks)
    if len(found) > 1:
        examples = [f"{path.name} is {name}" for name, path in found.items()]
        raise DataError(f"{mask_dir}: the masks mix formats ({', '.join(examples)}); keep one "
                        "format per folder")


def read_lab_masks(image_dir, mask_dir=None):
    """Every image's LabMask, in stem order; ``mask_dir`` None (or ``image_dir``): the masks lie
    beside their images, in Cellpose's layout. Every pair is read before any error is raised, so
    one message lists every unusable mask (the first few and a count)."""
    read, problems = [], []
    for image, mask in pair_lab_masks(image_dir, mask_dir):
        try:
            read.append(read_lab_mask(image, mask))
        except UserError as exc:
            problems.append(str(exc))
    if problems:
        raise DataError(f"{len(problems)} unusable mask(s): {first_few(problems, 3)}")
    check_one_format(read, image_dir if mask_dir is None else mask_dir)
    return read


# ---- what was read, in words -----------------------------------------------------------------

def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


def describe_format(lab_masks):
    """The format of these masks in words, with what it gives (cell, nucleus)."""
    found = formats_found(lab_masks)
    name = next(iter(found), lab_masks[0].format if lab_masks else BINARY)
    mask_format = format_named(name)
    return mask_format.describe(lab_masks) if mask_format else name


def summary_line(lab_masks):
    """'Read 20 images with 20 masks (three-level 0/128/255: cell and nucleus): 23 cells, 2 images
    of background only'."""
    images = len(lab_masks)
    line = (f"Read {_count(images, 'image')} with {_count(images, 'mask')} "
            f"({describe_format(lab_masks)}): {_count(sum(m.cells for m in lab_masks), 'cell')}")
    background = sum(not m.cells for m in lab_masks)
    if background:
        line += f", {_count(background, 'image')} of background only"
    return line
