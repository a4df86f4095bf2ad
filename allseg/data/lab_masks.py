"""A lab's own masks, in whichever of the usual formats it keeps them, read into one form.

For each image: an int32 cell label image (0 background, 1..n the cells) and a boolean nucleus
mask, or None where the format has no nuclei. Masks are matched to images by file stem, and each
file's format is told from its dtype and values:

- binary, 0/255 or 0/1: each 8-connected region is one cell (touching cells are one);
- three-level, 0 background, 128 cytoplasm, 255 nucleus: whole cell = mask > 0, nucleus = 255;
- instance labels, 16-bit (or 8-bit with more than three values): each cell its own id, as
  Cellpose and StarDist write them, so touching cells stay apart;
- QuPath GeoJSON, ``<stem>.geojson``: outlines drawn at the image's size (allseg/data/geojson.py).

A mask with no cell is kept: its image teaches what background looks like.
"""
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage import measure, segmentation

from allseg.core.errors import DataError, UserError, first_few
from allseg.data.geojson import read_qupath_cells
from allseg.data.images import list_images, read_rgb
from allseg.data.pairing import files_by_stem

BINARY, THREE_LEVEL, LABELS, GEOJSON = "binary", "three-level", "instance labels", "QuPath GeoJSON"
DESCRIPTIONS = {
    BINARY: "binary 0/255 or 0/1: whole cells, one per connected region",
    THREE_LEVEL: "three-level 0/128/255: cell and nucleus",
    LABELS: "instance labels: one id per cell, no nucleus",
}
CYTOPLASM, NUCLEUS = 128, 255
STRAY_FRACTION = 0.005  # of a three-level mask's pixels may hold other values (snapped to a level)
RASTER_MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp")
GEOJSON_EXTENSION = ".geojson"
# Listed so that a JPEG mask gets its own message rather than "image without mask".
LOSSY_EXTENSIONS = (".jpg", ".jpeg")


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

def read_mask_values(path) -> np.ndarray:
    """A raster mask's values as stored, 2-D. Images are read as 8-bit RGB (images.read_rgb),
    which would merge 16-bit cell ids; a mask is read unconverted. A mask saved in colour with
    equal channels is gray; an alpha channel is ignored."""
    path = Path(path)
    if path.suffix.lower() in LOSSY_EXTENSIONS:
        raise DataError(f"{path}: a JPEG mask; JPEG compression changes a mask's values (an edge "
                        "between 0 and 255 gets the values between), so save masks as PNG or TIFF")
    data = np.fromfile(str(path), dtype=np.uint8)  # np.fromfile copes with non-ASCII paths
    values = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if values is None or values.size == 0:
        raise DataError(f"{path}: not a readable image (empty, corrupt or not an image)")
    if values.ndim == 3:
        colour = values[:, :, :3]
        if not (colour == colour[:, :, :1]).all():
            raise DataError(f"{path}: a colour mask (its red, green and blue differ); save it as "
                            "a gray image: binary, 0/128/255 or 16-bit cell labels")
        values = colour[:, :, 0]
    return values


def detect_mask_format(values: np.ndarray, path) -> str:
    """BINARY, THREE_LEVEL or LABELS, from the mask's dtype and the values in it; ``path`` names
    the file in the error for values that fit none of them."""
    found = np.unique(values)
    if values.dtype == bool:
        return BINARY
    shown = first_few(found.tolist(), 8)
    if values.dtype.kind not in "uif" or found[0] < 0 or not np.array_equal(found, np.floor(found)):
        raise DataError(f"{path}: values {shown} are not whole numbers of 0 or more, so not a "
                        "mask (binary, 0/128/255 or cell labels)")
    present = set(found.tolist())
    if values.dtype.kind in "ui" and values.dtype.itemsize > 1:
        # 16 bits and more hold cell ids; 0 and the largest value is a binary mask saved wide.
        return BINARY if present == {0, np.iinfo(values.dtype).max} else LABELS
    if present <= {0, 1} or present <= {0, 255}:
        return BINARY
    if present <= {0, CYTOPLASM, NUCLEUS} or _three_level_with_strays(values, present):
        return THREE_LEVEL
    if len(present) > 3:
        return LABELS
    # Left: two or three values that are none of the above. 0/1/2 reads two ways, as a class map
    # (background, cytoplasm, nucleus) or as an 8-bit image of two cells' ids: a guess would be
    # wrong for one of them, so the message asks for the file in a format that says which.
    raise DataError(f"{path}: values {shown} fit no mask format: binary (0/255 or 0/1), "
                    "three-level (0/128/255) or cell labels (16-bit, or 8-bit with more than "
                    "three values); save a class map as 0/128/255, or cell ids as 16-bit")


def _three_level_with_strays(values, present):
    """An 8-bit mask of 0, 128 and 255 but for a few stray pixels of other values, as drawing
    and editing tools leave them (5 of the 100 CellaVision masks hold 1 to 179 such pixels)."""
    return (values.dtype == np.uint8 and {CYTOPLASM, NUCLEUS} <= present
            and np.count_nonzero(~np.isin(values, (0, CYTOPLASM, NUCLEUS)))
            <= STRAY_FRACTION * values.size)


def cells_from_values(values: np.ndarray, mask_format: str):
    """(int32 labels, nucleus or None) of a raster mask of the given format; in a three-level
    mask each value counts as the level nearest it."""
    if mask_format == LABELS:
        labels, _, _ = segmentation.relabel_sequential(values.astype(np.int64))
        return labels.astype(np.int32), None
    if mask_format == THREE_LEVEL:
        cell, nucleus = values >= CYTOPLASM // 2, values > (CYTOPLASM + NUCLEUS) // 2
    else:
        cell, nucleus = values > 0, None
    return measure.label(cell, connectivity=2).astype(np.int32), nucleus


def read_lab_mask(image_path, mask_path, size=None) -> LabMask:
    """One image's cells from its mask file, at the image's size (height, width; read from the
    image when not given): a raster mask must have it, a QuPath GeoJSON is drawn at it."""
    image_path, mask_path = Path(image_path), Path(mask_path)
    height, width = size or read_rgb(image_path).shape[:2]
    if mask_path.suffix.lower() == GEOJSON_EXTENSION:
        labels, nucleus = read_qupath_cells(mask_path, height, width)
        return LabMask(image_path, mask_path, GEOJSON, labels, nucleus)
    values = read_mask_values(mask_path)
    if values.shape != (height, width):
        raise DataError(f"{mask_path}: size {values.shape[1]}x{values.shape[0]} differs from its "
                        f"image's {width}x{height} ({image_path})")
    mask_format = detect_mask_format(values, mask_path)
    return LabMask(image_path, mask_path, mask_format, *cells_from_values(values, mask_format))


def read_cell_and_nucleus(image_path, mask_path, size=None) -> np.ndarray:
    """(H, W, 2) bool, whole cells and their nuclei (kept inside them), from a mask that carries
    nuclei: three-level or QuPath GeoJSON. Any other is refused naming the file: a model of
    whole cells and nuclei cannot learn nuclei from it."""
    lab = read_lab_mask(image_path, mask_path, size)
    if lab.nucleus is None:
        raise DataError(f"{lab.mask}: {DESCRIPTIONS.get(lab.format, lab.format)}, so no nuclei to "
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


def list_mask_files(folder):
    """Mask files directly in ``folder`` (raster masks, QuPath GeoJSON, and JPEGs, which are
    refused when read), sorted by name, hidden files skipped."""
    known = RASTER_MASK_EXTENSIONS + (GEOJSON_EXTENSION,) + LOSSY_EXTENSIONS
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in known)


def pair_lab_masks(image_dir, mask_dir):
    """[(image, mask)] matched by file stem, sorted by stem. An empty folder, an image without a
    mask or a mask without an image is a DataError naming them."""
    image_folder, mask_folder = _folder(image_dir, "image"), _folder(mask_dir, "mask")
    images = files_by_stem(list_images(image_folder), image_folder)
    if not images:
        raise DataError(f"{image_folder}: no images (png, tif, tiff, bmp, jpg)")
    masks = files_by_stem(list_mask_files(mask_folder), mask_folder)
    if not masks:
        raise DataError(f"{mask_folder}: no masks (png, tif, tiff or bmp masks, or QuPath "
                        ".geojson files)")
    problems = [f"image without mask: {images[s]}" for s in sorted(images.keys() - masks.keys())]
    problems += [f"mask without image: {masks[s]}" for s in sorted(masks.keys() - images.keys())]
    if problems:
        raise DataError(f"{len(problems)} unpaired file(s) in {image_folder} / {mask_folder}: "
                        f"{first_few(problems)}")
    return [(images[s], masks[s]) for s in sorted(images)]


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


def read_lab_masks(image_dir, mask_dir):
    """Every image's LabMask, in stem order. Every pair is read before any error is raised, so
    one message lists every unusable mask (the first few and a count)."""
    read, problems = [], []
    for image, mask in pair_lab_masks(image_dir, mask_dir):
        try:
            read.append(read_lab_mask(image, mask))
        except UserError as exc:
            problems.append(str(exc))
    if problems:
        raise DataError(f"{len(problems)} unusable mask(s): {first_few(problems, 3)}")
    check_one_format(read, mask_dir)
    return read


# ---- what was read, in words -----------------------------------------------------------------

def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


def describe_format(lab_masks):
    """The format of these masks in words, with what it gives (cell, nucleus)."""
    found = formats_found(lab_masks)
    mask_format = next(iter(found), lab_masks[0].format if lab_masks else BINARY)
    if mask_format != GEOJSON:
        return DESCRIPTIONS[mask_format]
    with_cells = [m for m in lab_masks if m.cells]
    with_nucleus = sum(m.nucleus is not None for m in with_cells)
    if with_nucleus == len(with_cells):
        return "QuPath GeoJSON: cell and nucleus" if with_cells else "QuPath GeoJSON"
    if not with_nucleus:
        return "QuPath GeoJSON: whole cells, no nucleus"
    return f"QuPath GeoJSON: cells, with nuclei in {with_nucleus} of {len(with_cells)} images"


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
