"""What a cell looks like inside, in numbers that a stain or a camera barely moves: its outline's
shape and the texture of its optical density, each cell first brought to one size and its density
scaled by its own mean and spread. A classifier that reads these reads the cell, not the colour
the lab stained it (docs/blasts.md measures how far that holds)."""
import cv2
import numpy as np
from skimage.feature import graycomatrix, graycoprops, local_binary_pattern
from skimage.filters import threshold_otsu
from skimage import measure

from allseg.cells.instances import convex_area, eccentricity

CELL_SIDE = 32  # px: every cell's equivalent diameter is brought to this before its texture
GREY_LEVELS = 16
SHAPE = ("circularity", "solidity", "eccentricity")
DENSITY = ("density_spread", "density_skew", "density_peakedness", "dark_fraction",
           "centre_to_rim")
TEXTURE = ("glcm_contrast", "glcm_homogeneity", "glcm_energy", "glcm_correlation")
PATTERNS = tuple(f"lbp_{i}" for i in range(10))  # uniform LBP, 8 neighbours at radius 1
FEATURE_NAMES = SHAPE + DENSITY + TEXTURE + PATTERNS


def optical_density(rgb):
    """-ln of the light each channel let through, summed: how much stain, whatever its hue."""
    return -np.log(np.maximum(rgb.astype(np.float32), 1.0) / 255.0).sum(axis=-1)


def cell_features(rgb, labels):
    """(cell label ids, float32 array of len(ids) x len(FEATURE_NAMES)): one row per labelled
    cell of an int label image (0 background) of the RGB image, in label order. Each cell's
    density is computed in its own bounding box: a scan's never whole."""
    ids, rows = [], []
    for region in measure.regionprops(labels):
        patch, inside = _at_cell_side(rgb, region)
        ids.append(region.label)
        rows.append(_shape(inside) + _density(patch[inside], inside) + _texture(patch, inside))
    return np.array(ids, np.int32), np.array(rows, np.float32).reshape(len(ids), len(FEATURE_NAMES))


def _at_cell_side(rgb, region):
    """The cell's density and boolean mask, cut out by its bounding box and resized so that its
    equivalent diameter is CELL_SIDE: texture then means the same at any magnification."""
    r0, c0, r1, c1 = region.bbox
    scale = CELL_SIDE / max(region.equivalent_diameter_area, 1.0)
    size = (max(1, round((c1 - c0) * scale)), max(1, round((r1 - r0) * scale)))
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = optical_density(rgb[r0:r1, c0:c1])
    crop[~region.image] = np.median(crop[region.image])  # no glass bleeds into the rim
    patch = cv2.resize(crop, size, interpolation=shrink)
    inside = cv2.resize(region.image.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if not inside.any():  # a sliver that rounds away: keep its brightest pixel
        inside.flat[np.argmax(patch)] = True
    return patch, inside


def _shape(inside):
    """Circularity, solidity and eccentricity of the cell at CELL_SIDE: a pixel perimeter's
    excess depends on the cell's size in pixels (a disc 30 px across scored 0.91, 60 px 0.73)."""
    area = int(np.count_nonzero(inside))
    perimeter = max(float(measure.perimeter(inside)), 1.0)
    return [4 * np.pi * area / perimeter ** 2, area / convex_area(inside), eccentricity(inside)]


def _density(values, inside):
    """The spread, skew and peakedness of the cell's density (scale-free), the share of its
    pixels darker than Otsu's split (most of a blast is nucleus) and its centre's density
    against its rim's."""
    mean, spread = float(values.mean()), float(values.std()) + 1e-6
    z = (values - mean) / spread
    try:
        split = threshold_otsu(values)
    except ValueError:  # one grey level only
        split = mean
    depth = cv2.distanceTransform(np.pad(inside, 1).view(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    depth = depth[inside]
    centre, rim = values[depth > np.median(depth)], values[depth <= np.median(depth)]
    centre_mean = float(centre.mean()) if centre.size else mean
    return [spread / (mean + 1e-6), float((z ** 3).mean()), float((z ** 4).mean()),
            float((values > split).mean()), centre_mean / (float(rim.mean()) + 1e-6)]


def _texture(patch, inside):
    """Co-occurrence statistics of the density scaled by the cell's own mean and spread
    (outside the cell: level 0), and the histogram of its local binary patterns."""
    values = patch[inside]
    z = (patch - values.mean()) / (values.std() + 1e-6)
    levels = np.clip((z + 3) / 6 * (GREY_LEVELS - 1), 0, GREY_LEVELS - 1).astype(np.uint8)
    levels[~inside] = 0
    matrix = graycomatrix(levels, [1, 2], [0, np.pi / 2], levels=GREY_LEVELS, symmetric=True,
                          normed=True)
    stats = [float(graycoprops(matrix, name).mean())
             for name in ("contrast", "homogeneity", "energy", "correlation")]
    patterns = local_binary_pattern(levels, 8, 1, "uniform")[inside].astype(np.int64)
    counts = np.bincount(patterns, minlength=len(PATTERNS))[:len(PATTERNS)]
    return stats + list(counts / max(patterns.size, 1))
