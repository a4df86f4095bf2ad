"""The mask formats a lab may keep its outlines in: one class per format, each reading one mask
file into cells, and the registry, MASK_FORMATS, that allseg/data/lab_masks.py consults.

A format says which files it takes: ``suffixes``, what follows the image's stem in the mask's
name, lower case (".png", "_seg.npy"). It reads a file into an int32 cell label image (0
background, 1..n the cells) and a boolean nucleus mask, or None where the format has no nuclei.
Raster formats that share a file type (a .png may be binary, three-level or cell ids) say instead
whether they recognise a mask's values: the first in MASK_FORMATS that does reads it. Built in, in
that order:

- binary, 0/255 or 0/1: each 8-connected region is one cell (touching cells are one);
- three-level, 0 background, 128 cytoplasm, 255 nucleus: whole cell = mask > 0, nucleus = 255;
- instance labels, 16-bit (or 8-bit with more than three values): each cell its own id, as
  StarDist and Cellpose write them, so touching cells stay apart;
- QuPath GeoJSON, ``<stem>.geojson``: outlines drawn at the image's size (allseg/data/geojson.py);
- Cellpose masks: ``<stem>_masks.png`` or ``<stem>_cp_masks.png`` (or .tif), read as cell ids
  whatever their values, since that is what Cellpose writes, and ``<stem>_seg.npy``, the file
  Cellpose's GUI saves, whose "masks" array holds the cell ids.

Adding a format is one class and one line in MASK_FORMATS (docs/fine-tuning.md, "Adding a mask
format").
"""
from pathlib import Path

import cv2
import numpy as np
from skimage import measure, segmentation

from allseg.core.errors import DataError, first_few
from allseg.data.geojson import read_qupath_cells

BINARY, THREE_LEVEL, LABELS, GEOJSON = "binary", "three-level", "instance labels", "QuPath GeoJSON"
CELLPOSE = "Cellpose masks"
CYTOPLASM, NUCLEUS = 128, 255
STRAY_FRACTION = 0.005  # of a three-level mask's pixels may hold other values (snapped to a level)
RASTER_MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp")
GEOJSON_EXTENSION = ".geojson"
# Taken as masks so that a JPEG mask gets its own message rather than "image without mask".
LOSSY_EXTENSIONS = (".jpg", ".jpeg")
# The endings Cellpose gives a mask image's stem: "_masks" as its GUI and training data name
# them, "_cp_masks" as its command line writes them.
CELLPOSE_MASK_ENDINGS = ("_masks", "_cp_masks")
CELLPOSE_SEG_SUFFIX = "_seg.npy"


# ---- the formats -----------------------------------------------------------------------------

class MaskFormat:
    """One way of keeping masks. A subclass sets ``name`` (LabMask.format, and what messages call
    it), ``description`` (what the summary line says the masks give) and ``suffixes`` (what
    follows the image's stem in a mask's name, lower case), and reads a file in ``read``; a
    raster format shared with others subclasses RasterMaskFormat instead."""
    name = ""
    description = ""
    suffixes = ()

    def takes(self, suffix) -> bool:
        return suffix.lower() in self.suffixes

    def read(self, path, height, width):
        """(int32 labels, bool nucleus or None) of the mask file ``path`` of an image of that
        size. A file that cannot be used is a DataError naming it."""
        raise NotImplementedError

    def describe(self, lab_masks):
        """These masks' format in words, with what it gives, for the summary line."""
        return self.description


class RasterMaskFormat(MaskFormat):
    """A mask saved as an image (read by read_mask_values), told from the other formats of its
    file type by its values."""
    suffixes = RASTER_MASK_EXTENSIONS + LOSSY_EXTENSIONS

    def recognises(self, values, present) -> bool:
        """Whether a mask is of this format: ``values`` as stored (2-D, whole numbers of 0 or
        more), ``present`` the set of its distinct values."""
        raise NotImplementedError

    def cells(self, values):
        """(int32 labels, bool nucleus or None) of a mask of this format."""
        raise NotImplementedError


def _wide_integers(values):
    return values.dtype.kind in "ui" and values.dtype.itemsize > 1


class BinaryMask(RasterMaskFormat):
    name, description = BINARY, "binary 0/255 or 0/1: whole cells, one per connected region"

    def recognises(self, values, present):
        if _wide_integers(values):
            # 16 bits and more hold cell ids; 0 and the largest value is a binary mask saved wide.
            return present == {0, np.iinfo(values.dtype).max}
        return present <= {0, 1} or present <= {0, 255}

    def cells(self, values):
        return measure.label(values > 0, connectivity=2).astype(np.int32), None


class ThreeLevelMask(RasterMaskFormat):
    name, description = THREE_LEVEL, "three-level 0/128/255: cell and nucleus"

    def recognises(self, values, present):
        return not _wide_integers(values) and (present <= {0, CYTOPLASM, NUCLEUS}
                                               or _three_level_with_strays(values, present))

    def cells(self, values):
        """Each value counts as the level nearest it."""
        cell, nucleus = values >= CYTOPLASM // 2, values > (CYTOPLASM + NUCLEUS) // 2
        return measure.label(cell, connectivity=2).astype(np.int32), nucleus


def _three_level_with_strays(values, present):
    """An 8-bit mask of 0, 128 and 255 but for a few stray pixels of other values, as drawing
    and editing tools leave them (5 of the 100 CellaVision masks hold 1 to 179 such pixels)."""
    return (values.dtype == np.uint8 and {CYTOPLASM, NUCLEUS} <= present
            and np.count_nonzero(~np.isin(values, (0, CYTOPLASM, NUCLEUS)))
            <= STRAY_FRACTION * values.size)


class InstanceLabels(RasterMaskFormat):
    name, description = LABELS, "instance labels: one id per cell, no nucleus"

    def recognises(self, values, present):
        return _wide_integers(values) or len(present) > 3

    def cells(self, values):
        return labels_from_ids(values), None


class QuPathGeoJSON(MaskFormat):
    name, description, suffixes = GEOJSON, "QuPath GeoJSON", (GEOJSON_EXTENSION,)

    def read(self, path, height, width):
        return read_qupath_cells(path, height, width)

    def describe(self, lab_masks):
        """Whether the cells came with nuclei: QuPath cells have them, annotations do not."""
        with_cells = [m for m in lab_masks if m.cells]
        with_nucleus = sum(m.nucleus is not None for m in with_cells)
        if with_nucleus == len(with_cells):
            return "QuPath GeoJSON: cell and nucleus" if with_cells else "QuPath GeoJSON"
        if not with_nucleus:
            return "QuPath GeoJSON: whole cells, no nucleus"
        return f"QuPath GeoJSON: cells, with nuclei in {with_nucleus} of {len(with_cells)} images"


class CellposeMaskImage(InstanceLabels):
    name, description = CELLPOSE, "Cellpose masks: instance labels, one id per cell"
    suffixes = tuple(ending + extension for ending in CELLPOSE_MASK_ENDINGS
                     for extension in RASTER_MASK_EXTENSIONS + LOSSY_EXTENSIONS)

    def recognises(self, values, present):
        # Cellpose writes cell ids however few the cells, in 8 bits when they fit
        return True

    def cells(self, values):
        # One id besides 0 is Cellpose's one cell, or a binary mask saved under Cellpose's name:
        # its connected regions are the cells either way (one region for Cellpose's cell)
        if len(np.unique(values)) <= 2:
            return measure.label(values > 0, connectivity=2).astype(np.int32), None
        return super().cells(values)


class CellposeSegFile(MaskFormat):
    name, description = CELLPOSE, CellposeMaskImage.description
    suffixes = (CELLPOSE_SEG_SUFFIX,)

    def read(self, path, height, width):
        ids = read_seg_file_masks(path)
        whole_values_present(ids, path)
        return labels_from_ids(ids), None


# The registry. Raster formats of one file type are tried in this order: binary before
# three-level, and both before instance labels, which takes any 16-bit mask or 8-bit one of
# more than three values.
MASK_FORMATS = [BinaryMask(), ThreeLevelMask(), InstanceLabels(), QuPathGeoJSON(),
                CellposeMaskImage(), CellposeSegFile()]
DESCRIPTIONS = {mask_format.name: mask_format.description for mask_format in MASK_FORMATS}


# ---- the registry consulted ------------------------------------------------------------------

def formats_taking(suffix):
    """The registered formats that take a mask whose name ends in ``suffix`` after the image's
    stem, in registry order."""
    return [mask_format for mask_format in MASK_FORMATS if mask_format.takes(suffix)]


def format_named(name):
    """The first registered format called ``name``, or None."""
    return next((mask_format for mask_format in MASK_FORMATS if mask_format.name == name), None)


def mask_suffixes():
    """Every suffix a registered format takes, longest first."""
    found = {suffix for mask_format in MASK_FORMATS for suffix in mask_format.suffixes}
    return sorted(found, key=lambda suffix: (-len(suffix), suffix))


def is_named_as_mask(path):
    """Whether a file's name says it is a mask: it ends in a registered suffix that is more than
    a file extension (``a_masks.png``, ``a_seg.npy``), so it is never taken for an image."""
    marked = tuple(suffix for suffix in mask_suffixes() if not suffix.startswith("."))
    return Path(path).name.lower().endswith(marked)


def possible_image_stems(path):
    """The stems of the images a mask file may belong to: its name less each registered suffix it
    ends in (``a_cp_masks.png``: "a", "a_cp" and "a_cp_masks")."""
    name = Path(path).name
    return {name[:-len(suffix)] for suffix in mask_suffixes()
            if len(name) > len(suffix) and name.lower().endswith(suffix)}


def suffix_after_stem(mask_path, image_stem):
    """What follows the image's stem in the mask's name, lower case; for a mask named otherwise,
    the longest registered suffix its name ends in (else its extension)."""
    name = Path(mask_path).name
    if name.startswith(image_stem) and formats_taking(name[len(image_stem):]):
        return name[len(image_stem):].lower()
    return next((suffix for suffix in mask_suffixes() if name.lower().endswith(suffix)),
                Path(mask_path).suffix.lower())


# ---- reading and telling raster masks apart --------------------------------------------------

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


def whole_values_present(values, path):
    """The set of a mask's distinct values; values other than whole numbers of 0 or more are a
    DataError naming ``path``."""
    found = np.unique(values)
    if values.dtype.kind not in "uif" or found[0] < 0 or not np.array_equal(found, np.floor(found)):
        raise DataError(f"{path}: values {first_few(found.tolist(), 8)} are not whole numbers of "
                        "0 or more, so not a mask (binary, 0/128/255 or cell labels)")
    return set(found.tolist())


def detect_raster_format(values, path, formats):
    """The first of ``formats`` (raster formats, in registry order) that recognises the mask's
    values; ``path`` names the file in the error for values that fit none."""
    if values.dtype == bool:
        values = values.view(np.uint8)
    present = whole_values_present(values, path)
    for mask_format in formats:
        if isinstance(mask_format, RasterMaskFormat) and mask_format.recognises(values, present):
            return mask_format
    # Left, for the built-in formats: two or three values that are none of them. 0/1/2 reads two
    # ways, as a class map (background, cytoplasm, nucleus) or as an 8-bit image of two cells'
    # ids: a guess would be wrong for one of them, so the message asks for the file in a format
    # that says which.
    raise DataError(f"{path}: values {first_few(sorted(present), 8)} fit no mask format: binary "
                    "(0/255 or 0/1), three-level (0/128/255) or cell labels (16-bit, or 8-bit "
                    "with more than three values); save a class map as 0/128/255, or cell ids as "
                    "16-bit")


def detect_mask_format(values: np.ndarray, path) -> str:
    """The format (BINARY, THREE_LEVEL or LABELS among those built in) of a raster mask of
    ``path``'s file type, from its dtype and the values in it; ``path`` names the file in the
    error for values that fit none of them."""
    return detect_raster_format(values, path, formats_taking(Path(path).suffix)).name


# ---- cell ids --------------------------------------------------------------------------------

def labels_from_ids(ids):
    """int32 labels 1..n of a mask of cell ids, whatever ids a tool gave them (7 and 300)."""
    labels, _, _ = segmentation.relabel_sequential(np.asarray(ids).astype(np.int64))
    return labels.astype(np.int32)


def read_seg_file_masks(path):
    """The "masks" array of a Cellpose ``_seg.npy``: a dict that Cellpose's GUI pickled with
    np.save, its "masks" the cell ids. A file without a 2-D one is a DataError naming it."""
    try:
        # allow_pickle: this loads the lab's own file, saved by its Cellpose, not downloaded data.
        saved = np.load(path, allow_pickle=True)
        saved = saved.item() if saved.shape == () else saved
    except Exception as exc:  # unpickling a damaged file raises many types
        raise DataError(f"{path}: not a readable Cellpose _seg.npy ({type(exc).__name__}: "
                        f"{exc}); save it again from Cellpose") from None
    masks = saved.get("masks") if isinstance(saved, dict) else None
    if isinstance(masks, np.ndarray) and masks.ndim == 2:
        return masks
    if isinstance(saved, np.ndarray):
        found = f"it holds a {saved.dtype} array of shape {saved.shape}, not Cellpose's dict"
    elif not isinstance(saved, dict):
        found = f"it holds a {type(saved).__name__}, not Cellpose's dict"
    elif "masks" not in saved:
        found = f"its keys: {first_few(sorted(map(str, saved)), 8)}"
    else:
        found = f"its masks have shape {np.shape(masks)}"
    raise DataError(f'{path}: a Cellpose _seg.npy without a 2-D "masks" array ({found}); save it '
                    "again from Cellpose's GUI, or save the masks as <name>_masks.png")
