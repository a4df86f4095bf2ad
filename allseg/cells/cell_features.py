"""What a cell looks like inside, in numbers that a stain or a camera barely moves: its outline's
shape and the texture of its optical density, each cell first brought to one size and its density
scaled by its own mean and spread. A classifier that reads these reads the cell, not the colour
the lab stained it (docs/blasts.md measures how far that holds). The cells of an image are
measured together on one sheet (allseg/cells/cell_sheet.py): each cell's numbers are what it
would give alone, at a fraction of the cost of measuring cells one by one."""
import math

import cv2
import numpy as np
from scipy import ndimage

from allseg.cells.cell_sheet import Sheet
from allseg.cells.instances import grid_points_in_convex, hulls_of_pixels

CELL_SIDE = 32  # px: every cell's equivalent diameter is brought to this before its texture
GREY_LEVELS = 16
OTSU_BINS = 256
SHAPE = ("circularity", "solidity", "eccentricity")
DENSITY = ("density_spread", "density_skew", "density_peakedness", "dark_fraction",
           "centre_to_rim")
TEXTURE = ("glcm_contrast", "glcm_homogeneity", "glcm_energy", "glcm_correlation")
PATTERNS = tuple(f"lbp_{i}" for i in range(10))  # uniform LBP, 8 neighbours at radius 1
# The one number magnification moves: a blast is larger than a normal lymphocyte, so a call
# fitted on a lab's cells reads their size, at the lab's magnification (docs/blasts.md).
SIZE = ("log_diameter_px",)
FEATURE_NAMES = SHAPE + DENSITY + TEXTURE + PATTERNS + SIZE
# Co-occurrence at 1 and 2 px, across and down: (rows, cols) offsets, averaged.
PAIR_OFFSETS = ((0, 1), (0, 2), (1, 0), (2, 0))
# Co-occurrence statistics as weights on a matrix's cells (row level i, column level j):
# contrast, homogeneity, the mean level, its square and the product of the two levels.
_I, _J = np.meshgrid(np.arange(GREY_LEVELS, dtype=np.float64),
                     np.arange(GREY_LEVELS, dtype=np.float64), indexing="ij")
COOCCURRENCE_WEIGHTS = np.stack([(_I - _J) ** 2, 1 / (1 + (_I - _J) ** 2), _I, _I ** 2, _I * _J],
                                axis=-1).reshape(GREY_LEVELS ** 2, 5)
# Uniform LBP's 8 neighbours, counter-clockwise from the right, as (rows, cols) steps.
NEIGHBOURS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))
DIAGONAL = 0.70711  # sin(45 degrees), to the 5 decimals skimage rounds it to
# The optical density of each 8-bit level of a channel: -ln(transmitted fraction), 0 kept at 1.
DENSITY_OF_LEVEL = -np.log(np.maximum(np.arange(256, dtype=np.float32), 1.0) / 255.0)
CHANNEL_SUM = np.ones((1, 3), np.float32)
CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
# A border pixel's perimeter contribution from its 4-neighbourhood code (skimage's perimeter).
PERIMETER_CODE = np.array([[10, 2, 10], [2, 1, 2], [10, 2, 10]], np.float32)
PERIMETER_WEIGHT = np.zeros(50)
PERIMETER_WEIGHT[[5, 7, 15, 17, 25, 27]] = 1
PERIMETER_WEIGHT[[21, 33]] = math.sqrt(2)
PERIMETER_WEIGHT[[13, 23]] = (1 + math.sqrt(2)) / 2


def optical_density(rgb):
    """-ln of the light each channel let through, summed: how much stain, whatever its hue.
    (A table of the 256 values and OpenCV's channel sum: five times faster than the formula.)"""
    return cv2.transform(DENSITY_OF_LEVEL[rgb], CHANNEL_SUM)


def cell_features(rgb, labels):
    """(cell label ids, float32 array of len(ids) x len(FEATURE_NAMES)): one row per labelled
    cell of an int label image (0 background) of the RGB image, in label order. Each cell's
    density is computed in its own bounding box: a scan's never whole."""
    boxes = ndimage.find_objects(labels)
    ids = np.array([i + 1 for i, box in enumerate(boxes) if box is not None], np.int32)
    if not ids.size:
        return ids, np.zeros((0, len(FEATURE_NAMES)), np.float32)
    cut = [_at_cell_side(rgb, labels[boxes[i - 1]] == i, boxes[i - 1]) for i in ids]
    sheet = Sheet([inside.shape for _, inside, _ in cut])
    density = sheet.paint([patch for patch, _, _ in cut], np.float32)
    inside = sheet.paint([inside for _, inside, _ in cut], bool)
    cells = _Cells(sheet, density, inside)
    size = [np.log([diameter for _, _, diameter in cut])]
    columns = _shape(cells) + _density(cells) + _texture(cells) + size
    return ids, np.stack(columns, axis=1).astype(np.float32)


def _at_cell_side(rgb, image, box):
    """The cell's density and boolean mask, cut out by its bounding box (box: slices; image:
    the cell's boolean mask within it) and resized so that its equivalent diameter is
    CELL_SIDE (texture then means the same at any magnification); and that diameter as it was."""
    height, width = image.shape
    diameter = math.sqrt(4 * np.count_nonzero(image) / math.pi)
    scale = CELL_SIDE / max(diameter, 1.0)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = optical_density(rgb[box])
    crop[~image] = _median(crop[image])  # no glass bleeds into the rim
    patch = cv2.resize(crop, size, interpolation=shrink)
    inside = cv2.resize(image.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if not inside.any():  # a sliver that rounds away: keep its densest pixel
        inside.flat[np.argmax(patch)] = True
    return patch, inside, diameter


def _median(values):
    """np.median of a 1-d array, by partition (np.median's own overhead is five times this)."""
    middle = values.size // 2
    if values.size % 2:
        return np.partition(values, middle)[middle]
    part = np.partition(values, [middle - 1, middle])
    return (part[middle - 1] + part[middle]) / 2


class _Cells:
    """The cells' pixels on their sheet: which cell each inside pixel is (cell), its density
    (values) and that scaled by its cell's mean and spread (z), and each cell's pixel count,
    mean and spread of density."""

    def __init__(self, sheet, density, inside):
        self.sheet, self.density, self.inside = sheet, density, inside
        self.cell = sheet.owner[inside]
        self.values = density[inside].astype(np.float64)
        self.count = np.bincount(self.cell, minlength=sheet.count).astype(np.float64)
        self.mean = self.per_cell(self.values)
        self.spread = np.sqrt(np.maximum(self.per_cell(self.values ** 2) - self.mean ** 2, 0))
        self.z = (self.values - self.mean[self.cell]) / (self.spread + 1e-6)[self.cell]

    def per_cell(self, values):
        """Each cell's mean of a per-inside-pixel array."""
        return np.bincount(self.cell, weights=values, minlength=self.sheet.count) / self.count

    def sorted_runs(self, values):
        """values sorted within each cell, cells in order, and where each cell's run starts.
        One sort of a single key (the cell, then the value) is much faster than a lexsort."""
        low = float(values.min())
        span = float(values.max()) - low + 1.0
        keys = np.sort(self.cell * span + (values - low))
        cells = np.repeat(np.arange(self.sheet.count), self.count.astype(np.int64))
        starts = np.concatenate([[0], np.cumsum(self.count[:-1])]).astype(np.int64)
        return keys - cells * span + low, starts


def _shape(cells):
    """Circularity, solidity and eccentricity of each cell at CELL_SIDE: a pixel perimeter's
    excess depends on the cell's size in pixels (a disc 30 px across scored 0.91, 60 px 0.73)."""
    inside = cells.inside.view(np.uint8)
    border = inside - cv2.erode(inside, CROSS)
    hulls = _hull_areas(cells, border)
    code = cv2.filter2D(border.astype(np.float32), -1, PERIMETER_CODE,
                        borderType=cv2.BORDER_CONSTANT).astype(np.int64)
    edge = border > 0
    perimeter = np.maximum(cells.sheet.sums(PERIMETER_WEIGHT[code], edge), 1.0)
    rows, cols = (axis.astype(np.float64) for axis in np.nonzero(cells.inside))
    centre_row, centre_col = cells.per_cell(rows), cells.per_cell(cols)
    row_var = cells.per_cell(rows ** 2) - centre_row ** 2
    col_var = cells.per_cell(cols ** 2) - centre_col ** 2
    both = cells.per_cell(rows * cols) - centre_row * centre_col
    spread = np.hypot((row_var - col_var) / 2, both)
    major = (row_var + col_var) / 2 + spread
    minor = np.maximum((row_var + col_var) / 2 - spread, 0.0)
    eccentricity = np.sqrt(1 - np.divide(minor, major, out=np.ones_like(major), where=major > 0))
    return [4 * np.pi * cells.count / perimeter ** 2, cells.count / hulls, eccentricity]


def _hull_areas(cells, border):
    """Each cell's convex hull area in pixels (as skimage's area_convex), from the outline
    pixels of the whole sheet, found once and split by cell."""
    pixels = np.argwhere(border)
    owners = cells.sheet.owner[pixels[:, 0], pixels[:, 1]]
    order = np.argsort(owners, kind="stable")
    ends = np.cumsum(np.bincount(owners, minlength=cells.sheet.count)).tolist()
    return grid_points_in_convex(hulls_of_pixels(pixels[order], ends)).astype(float)


def _density(cells):
    """The spread, skew and peakedness of each cell's density (scale-free), the share of its
    pixels darker than Otsu's split (most of a blast is nucleus) and its centre's density
    against its rim's."""
    spread, z = cells.spread + 1e-6, cells.z
    dark = cells.values > _otsu(cells)[cells.cell]
    depth = cv2.distanceTransform(cells.inside.view(np.uint8), cv2.DIST_L2, 3)[cells.inside]
    ordered, starts = cells.sorted_runs(depth)
    last = starts + cells.count.astype(np.int64) - 1
    median = (ordered[(starts + last) // 2] + ordered[(starts + last + 1) // 2]) / 2
    centre = depth > median[cells.cell]
    centre_count = np.bincount(cells.cell, weights=centre, minlength=cells.sheet.count)
    centre_sum = np.bincount(cells.cell, weights=cells.values * centre,
                             minlength=cells.sheet.count)
    rim_sum = cells.mean * cells.count - centre_sum
    centre_mean = np.where(centre_count > 0, centre_sum / np.maximum(centre_count, 1),
                           cells.mean)
    rim_mean = rim_sum / (cells.count - centre_count)
    return [spread / (cells.mean + 1e-6), cells.per_cell(z ** 3), cells.per_cell(z ** 4),
            cells.per_cell(dark), centre_mean / (rim_mean + 1e-6)]


def _otsu(cells):
    """Each cell's Otsu split of its density, over OTSU_BINS bins between its least and most
    dense pixel (as skimage's threshold_otsu); a cell of one density only: that density."""
    low, high = np.full(cells.sheet.count, np.inf), np.full(cells.sheet.count, -np.inf)
    np.minimum.at(low, cells.cell, cells.values)
    np.maximum.at(high, cells.cell, cells.values)
    width = np.where(high > low, high - low, 1.0)
    step = (cells.values - low[cells.cell]) / width[cells.cell] * OTSU_BINS
    bins = np.clip(step.astype(np.int64), 0, OTSU_BINS - 1)
    counts = np.bincount(cells.cell * OTSU_BINS + bins, minlength=cells.sheet.count * OTSU_BINS)
    counts = counts.reshape(-1, OTSU_BINS).astype(np.float64)
    centres = low[:, None] + (np.arange(OTSU_BINS) + 0.5) * (width / OTSU_BINS)[:, None]
    below, above = np.cumsum(counts, 1), np.cumsum(counts[:, ::-1], 1)[:, ::-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_below = np.cumsum(counts * centres, 1) / below
        mean_above = np.cumsum((counts * centres)[:, ::-1], 1)[:, ::-1] / above
        between = below[:, :-1] * above[:, 1:] * (mean_below[:, :-1] - mean_above[:, 1:]) ** 2
    split = centres[np.arange(len(centres)), np.argmax(np.nan_to_num(between, nan=-1.0), 1)]
    return np.where(high > low, split, low)


def _texture(cells):
    """Co-occurrence statistics of the density scaled by each cell's own mean and spread
    (outside the cell: level 0), and the histogram of its local binary patterns."""
    levels = np.zeros(cells.sheet.shape, np.uint8)
    levels[cells.inside] = np.clip((cells.z + 3) / 6 * (GREY_LEVELS - 1), 0, GREY_LEVELS - 1)
    matrices = cells.sheet.pair_counts(levels, PAIR_OFFSETS, GREY_LEVELS)
    matrices = matrices / np.maximum(matrices.sum(axis=(2, 3), keepdims=True), 1)
    stats = _cooccurrence_stats(matrices)
    patterns = uniform_patterns(levels, np.flatnonzero(cells.inside))
    counts = np.bincount(cells.cell * len(PATTERNS) + patterns,
                         minlength=cells.sheet.count * len(PATTERNS))
    return stats + list((counts.reshape(-1, len(PATTERNS)) / cells.count[:, None]).T)


def uniform_patterns(levels, pixels):
    """Ojala's rotation-invariant uniform local binary pattern at each of the flat indices
    pixels of a 2-d levels array (which must lie at least 1 px from its edge): 8 neighbours at
    radius 1, the diagonal ones interpolated as skimage does; 0-8 neighbours at least as dense
    when they change at most twice around the circle, 9 otherwise. Written here because
    skimage's interpolation rounds differently at different positions in an image, so a tie
    could go either way: a cell's patterns would depend on where it lay."""
    flat = levels.ravel().astype(np.float64)
    width = levels.shape[1]
    centre = flat[pixels]

    def neighbour(rows, cols):
        return flat[pixels + rows * width + cols]

    bits = []
    for rows, cols in NEIGHBOURS:
        value = neighbour(rows, cols)
        if rows and cols:  # a diagonal neighbour at 0.70711 px each way: bilinear
            near, far = 1 - DIAGONAL, DIAGONAL
            value = (near * near * centre + far * near * neighbour(rows, 0)
                     + near * far * neighbour(0, cols) + far * far * value)
        bits.append(value - centre >= -1e-9)  # a tie counts as at least as dense
    changes = sum((bits[i] != bits[i - 1]).astype(np.int64) for i in range(len(bits)))
    ones = sum(bit.astype(np.int64) for bit in bits)
    return np.where(changes <= 2, ones, len(NEIGHBOURS) + 1)


def _cooccurrence_stats(matrices):
    """skimage's graycoprops contrast, homogeneity, energy and correlation of each (cell,
    offset) normalised symmetric co-occurrence matrix, each averaged over the offsets. Each is a
    sum of the matrix weighed by a fixed table (one matrix product for all of them), but energy.
    The matrices are symmetric: the row and column levels share their mean and spread."""
    cells, offsets = matrices.shape[:2]
    flat = matrices.reshape(cells * offsets, -1)
    contrast, homogeneity, mean, square, product = (flat @ COOCCURRENCE_WEIGHTS).T
    energy = np.sqrt((flat ** 2).sum(axis=1))
    variance = square - mean ** 2
    covariance = product - mean ** 2
    still = np.sqrt(np.maximum(variance, 0)) < 1e-15
    correlation = np.where(still, 1.0, covariance / np.where(still, 1.0, variance))
    return [values.reshape(cells, offsets).mean(axis=1)
            for values in (contrast, homogeneity, energy, correlation)]
