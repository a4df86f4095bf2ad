"""Cells from a binary mask: separated instances, and what a lab measures on each.

One function, ``label_cells``, turns any mask (the truth or a prediction) into cells, so both are
counted the same way: 8-connected regions of at least ``min_area`` pixels, and, with
``split_depth`` > 0, touching cells split apart by a watershed on the distance transform.
"""
import csv
import io
import math

import cv2
import numpy as np
from scipy import ndimage
from skimage import measure, morphology, segmentation

SPLIT_HOLE_PX = 30


def cell_settings(infer, scale=1.0):
    """(min_area, split_depth, split_hole_px): a config's [infer] cell keys, in the order
    label_cells, score_cells and summarize_cells take them. They count pixels at the model's
    scale; for images resized by ``scale`` before prediction, in the images' own pixels."""
    return (max(1, round(infer.cell_min_area / scale ** 2)), infer.cell_split_depth / scale,
            round(infer.cell_split_hole_px / scale ** 2))


def label_cells(mask, min_area, split_depth=0.0, split_hole_px=SPLIT_HOLE_PX):
    """int32 label image: 0 background, 1..n the cells, numbered in reading order.

    Touching cells show as one region whose distance-to-background map has one peak per cell. A
    peak that stands more than ``split_depth`` pixels above the saddle joining it to a higher one
    seeds a cell of its own; the region is then divided along the watershed of the
    distance map. Every pixel of the region stays in some cell, so splitting never changes the
    mask, only the count. A split that would leave a piece under min_area is not made.

    Holes of at most ``split_hole_px`` pixels count as cell for the distance map: a speckled or
    pale interior is not a border between cells, yet each such hole dents the map and would seed
    a cell on either side of it. The larger pocket that three touching cells enclose stays a
    hole."""
    regions, count = ndimage.label(mask, structure=np.ones((3, 3), bool))  # int32, reading order
    small = label_areas(regions) < min_area
    small[0] = False
    if small.any():  # specks; renumbered below
        _in_strips(regions, lambda part: np.where(small[part], 0, part))
    if split_depth > 0 and count:
        _split_touching(regions, split_depth, min_area, split_hole_px)
    present = label_areas(regions) > 0
    present[0] = False
    renumber = np.zeros(len(present), np.int32)
    renumber[present] = np.arange(1, np.count_nonzero(present) + 1, dtype=np.int32)
    _in_strips(regions, lambda part: renumber[part])
    return regions


STRIP_ROWS = 1024


def _in_strips(labels, change, rows=STRIP_ROWS):
    """labels[...] = change(labels), a strip of rows at a time: a slide scan's label image is
    hundreds of MB, and a whole-image temporary would double it."""
    for top in range(0, labels.shape[0], rows):
        labels[top:top + rows] = change(labels[top:top + rows])


def label_areas(labels, rows=STRIP_ROWS):
    """np.bincount(labels.ravel()), a strip at a time: bincount copies its input to 64-bit
    integers, 925 MB for a 116 MP scan's labels."""
    areas = np.zeros(int(labels.max()) + 1, np.int64)
    for top in range(0, labels.shape[0], rows):
        areas += np.bincount(labels[top:top + rows].ravel(), minlength=len(areas))
    return areas


def remove_small_components(mask, min_area):
    """Drops connected foreground regions smaller than min_area pixels (8-connected)."""
    if min_area <= 1 or not mask.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def fill_small_holes(mask, max_px):
    """The mask with every background region of at most max_px pixels that does not reach the
    image edge filled (background 4-connected, the complement of 8-connected foreground).
    skimage's remove_small_holes would also fill a small notch of background at the edge."""
    if max_px <= 0:
        return mask
    holes, _ = ndimage.label(~mask)
    sizes = np.bincount(holes.ravel())
    small = sizes <= max_px
    small[0] = False
    edge = np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]])
    small[edge] = False
    return mask | small[holes]


def euclidean_distance(mask):
    """scipy.ndimage.distance_transform_edt(mask), the same float64 array, about 4 times faster.

    OpenCV's exact (DIST_MASK_PRECISE) transform gives each pixel's distance to the nearest
    background pixel in float32; the squared distance is a whole number of pixels, recovered
    exactly by rounding, so its float64 square root is scipy's value to the last bit. A mask
    with no background at all goes to scipy, whose answer then is its own convention."""
    if mask.all():
        return ndimage.distance_transform_edt(mask)
    approx = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.sqrt(np.rint(np.square(approx, dtype=np.float64)))


def lowered_peaks(distance, depth):
    """skimage.morphology.reconstruction(distance - depth, distance, method="dilation"), the same
    array to the last bit, about 17 times faster on a 224x224 mask.

    Reconstruction by dilation only picks values, never computes new ones, so any algorithm that
    reaches its fixed point gives the same result; this one repeats a 3x3 dilation capped by
    ``distance``. On its own that would take as many rounds as the image is wide, because the
    background's value spreads across all of it. Every pixel ends at least at
    min(max(distance) - depth, 0) (the grid is connected and distance >= 0 everywhere), so
    starting there is exact, leaves the background settled from the start, and each region needs
    only as many rounds as it is wide."""
    floor = min(float(distance.max()) - depth, 0.0)
    out = np.maximum(distance - depth, floor)
    square = np.ones((3, 3), np.uint8)
    while True:
        grown = np.minimum(cv2.dilate(out, square), distance)
        if np.array_equal(grown, out):
            return out
        out = grown


def _split_touching(regions, depth, min_area, hole_px):
    """Splits the touching cells of a label image in place, each region within its own box (so
    a slide scan never needs a whole-image distance map); new pieces take labels after the
    largest. A region is alone in its box in all that matters: the pixels next to it are
    background, so its distances, holes and seeds are those of the whole image."""
    height, width = regions.shape
    next_label = int(regions.max()) + 1
    for index, box in enumerate(ndimage.find_objects(regions), start=1):
        if box is None:
            continue
        ys, xs = (slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in
                  zip(box, (height, width)))
        inside = regions[ys, xs] == index
        if np.count_nonzero(inside) < 2 * min_area:  # any split would leave a piece too small
            continue
        parts = _split_region(inside, depth, hole_px)
        if len(parts) < 2 or min(np.count_nonzero(part) for part in parts) < min_area:
            continue
        view = regions[ys, xs]
        for part in parts:
            view[part] = next_label
            next_label += 1


def _split_region(inside, depth, hole_px):
    """The pieces (boolean images, together the whole region) of one region's image."""
    solid = fill_small_holes(inside, hole_px)  # a filled hole lies inside the region
    distance = euclidean_distance(solid)
    # The h-maxima transform: every peak lowered until it stands at most `depth` above its
    # saddle. Each plateau left on top is one seed; a ridge (a hollow cell's rim) stays one.
    flattened = lowered_peaks(distance, depth)
    seeds = measure.label(morphology.local_maxima(flattened, connectivity=2) & solid,
                          connectivity=2)
    pieces = segmentation.watershed(-distance, seeds, mask=solid, connectivity=2)
    ids = np.unique(pieces[inside])
    return [inside & (pieces == i) for i in ids[ids > 0]]


MEASUREMENTS = ("cell", "area_px", "perimeter_px", "equivalent_diameter_px", "circularity",
                "solidity", "eccentricity", "mean_red", "mean_green", "mean_blue",
                "centroid_row", "centroid_col", "bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1",
                "touches_border")
# With the pixel size known: the same lengths in micrometres, the area in square micrometres.
PHYSICAL = {"area_um2": ("area_px", 2), "perimeter_um": ("perimeter_px", 1),
            "equivalent_diameter_um": ("equivalent_diameter_px", 1)}
# With nuclei (a model with two classes): the nucleus's pixels inside the cell and its share of
# the cell's area (the N:C ratio haematologists read); in square micrometres with the pixel size.
NUCLEUS_MEASUREMENTS = ("nucleus_area_px", "nc_ratio")
NUCLEUS_PHYSICAL = {"nucleus_area_um2": ("nucleus_area_px", 2)}


# A pixel's outline as skimage's convex hull sees it: the middle of each of its four edges.
EDGE_MIDPOINTS = np.array([[0, -0.5], [0, 0.5], [-0.5, 0], [0.5, 0]], np.float32)
OUTLINE_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def convex_hull(image):
    """The vertices (row, col) of the convex hull of a boolean image's pixels' edge midpoints:
    with grid_points_in_convex, the pixels skimage's regionprops counts as area_convex, several
    times faster (OpenCV finds the hull instead of Qhull; every one of 103,695 cells tried, from
    Early's masks and random blobs, agrees).
    Only the outline's pixels can reach it: each edge midpoint of an inner pixel lies between
    two outline pixels' midpoints on the same row or column."""
    image = image.view(np.uint8) if image.dtype == bool else image.astype(np.uint8)
    outline = image - cv2.erode(image, OUTLINE_CROSS, borderType=cv2.BORDER_CONSTANT,
                                borderValue=0)
    pixels = cv2.findNonZero(outline)[:, 0, ::-1]
    return hulls_of_pixels(pixels, [len(pixels)])[0]


def hulls_of_pixels(pixels, ends):
    """convex_hull's vertices for each group of outline pixels: pixels ((n, 2) row, col) hold
    the groups one after another, the k-th ending before ends[k]."""
    points = (pixels.astype(np.float32)[:, None, :] + EDGE_MIDPOINTS).reshape(-1, 2)
    starts = [0, *ends[:-1]]
    return [cv2.convexHull(points[4 * start:4 * end])[:, 0, :].astype(np.float64)
            for start, end in zip(starts, ends)]


def grid_points_in_convex(polygons, batch=2 ** 20):
    """For each convex polygon (vertices (row, col) in order), how many integer points lie
    inside it or on its edges (what skimage's grid_points_in_poly counts), found row by row from
    where each row crosses the edges, many polygons at once: polygons of a like size together,
    about batch edge-rows a go, so that one large cell cannot make every array large."""
    sizes = np.array([len(polygon) for polygon in polygons])
    stacked = np.concatenate(polygons)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    height = (np.maximum.reduceat(stacked[:, 0], starts)
              - np.minimum.reduceat(stacked[:, 0], starts) + 1)
    order = np.lexsort((sizes, height))  # the tallest last: each grows its batch's arrays
    counts, chosen = np.zeros(len(polygons), np.int64), []
    for i in order.tolist() + [None]:
        if chosen and (i is None or (len(chosen) + 1) * sizes[i] * height[i] > batch):
            counts[chosen] = _points_in_convex(stacked, starts[chosen], sizes[chosen])
            chosen = []
        chosen.append(i)
    return counts


def _points_in_convex(stacked, starts, sizes, tolerance=1e-9):
    """grid_points_in_convex's count for the polygons whose vertices are stacked[start:start +
    size], laid side by side in arrays of polygons x edges x rows."""
    # Padding with each polygon's last vertex adds edges of no length: they lie on it.
    vertex = starts[:, None] + np.minimum(np.arange(sizes.max()), sizes[:, None] - 1)
    start = stacked[vertex][:, :, None, :]
    end = np.roll(start, -1, axis=1)
    first_row = np.ceil(start[..., 0].min(axis=1) - tolerance)  # polygons x 1
    last_row = np.floor(start[..., 0].max(axis=1) + tolerance)
    rows = first_row[:, :, None] + np.arange(int((last_row - first_row).max()) + 1)
    low, high = np.minimum(start[..., 0], end[..., 0]), np.maximum(start[..., 0], end[..., 0])
    crosses = (rows >= low - tolerance) & (rows <= high + tolerance)  # polygons x edges x rows
    flat = high - low < tolerance  # an edge along a row: both its ends count
    along = np.clip((rows - start[..., 0]) / np.where(flat, 1.0, end[..., 0] - start[..., 0]),
                    0, 1)
    col = start[..., 1] + along * (end[..., 1] - start[..., 1])
    left = np.where(crosses, np.where(flat, np.minimum(start[..., 1], end[..., 1]), col),
                    np.inf).min(axis=1)
    right = np.where(crosses, np.where(flat, np.maximum(start[..., 1], end[..., 1]), col),
                     -np.inf).max(axis=1)
    counts = np.floor(right + tolerance) - np.ceil(left - tolerance) + 1
    return np.where(counts > 0, counts, 0).sum(axis=1).astype(np.int64)


def eccentricity(image):
    """The eccentricity of the ellipse with the cell's second moments, as skimage's regionprops
    defines it, from OpenCV's moments: within 3e-15 of skimage's on the 19,333 cells tried, and
    about 15 times faster."""
    moments = cv2.moments(image.astype(np.uint8), binaryImage=True)
    rows, both, cols = (moments[k] / moments["m00"] for k in ("mu20", "mu11", "mu02"))
    spread = math.hypot((rows - cols) / 2, both)
    major, minor = (rows + cols) / 2 + spread, max((rows + cols) / 2 - spread, 0.0)
    return math.sqrt(1 - minor / major) if major else 0.0


def measure_cells(labels, rgb, pixel_size_um=0.0, nucleus=None):
    """One dict per cell (in label order) with the MEASUREMENTS; lengths in pixels, and with
    pixel_size_um > 0 (the side of a pixel in micrometres) the PHYSICAL ones too. Given a boolean
    nucleus mask, the NUCLEUS_MEASUREMENTS too (and NUCLEUS_PHYSICAL with the pixel size): the
    nucleus of a cell is the nucleus mask within its label. The bounding box is
    [row0, row1) x [col0, col1). Area counts the cell's pixels in the mask. Perimeter and
    circularity (4*pi*area/perimeter^2, with holes filled: about 1 for a disc, lower for ragged or
    elongated cells; on a pixel grid a disc scores a little under or over 1) describe the cell's
    outline: a pinhole left by the threshold would otherwise add its rim to the perimeter (two
    one-pixel holes in a disc of radius 10 add 17%) and make a round cell look ragged."""
    height, width = labels.shape
    rows, regions = [], measure.regionprops(labels, intensity_image=rgb)
    hulls = grid_points_in_convex([convex_hull(r.image) for r in regions]) if regions else []
    for region, hull in zip(regions, hulls):
        r0, c0, r1, c1 = region.bbox
        perimeter = float(measure.perimeter(region.image_filled))
        red, green, blue = (float(v) for v in region.intensity_mean)
        rows.append({
            "cell": int(region.label), "area_px": int(region.area),
            "perimeter_px": round(perimeter, 2),
            "equivalent_diameter_px": round(float(region.equivalent_diameter_area), 2),
            "circularity": (round(4 * math.pi * region.area_filled / perimeter ** 2, 4)
                            if perimeter else 0.0),
            "solidity": round(float(region.area / hull), 4),
            "eccentricity": round(eccentricity(region.image), 4),
            "mean_red": round(red, 1), "mean_green": round(green, 1), "mean_blue": round(blue, 1),
            "centroid_row": round(float(region.centroid[0]), 2),
            "centroid_col": round(float(region.centroid[1]), 2),
            "bbox_row0": r0, "bbox_col0": c0, "bbox_row1": r1, "bbox_col1": c1,
            "touches_border": bool(r0 == 0 or c0 == 0 or r1 == height or c1 == width),
        })
        if nucleus is not None:
            rows[-1].update(nucleus_measurements(region, nucleus))
        if pixel_size_um > 0:
            physical = {**PHYSICAL, **(NUCLEUS_PHYSICAL if nucleus is not None else {})}
            rows[-1].update({name: round(rows[-1][px] * pixel_size_um ** power, 3)
                             for name, (px, power) in physical.items()})
    return rows


def nucleus_measurements(region, nucleus):
    """A cell's nucleus area and N:C ratio (nucleus area / cell area, 0 with no nucleus pixels),
    counted within the cell's bounding box: a scan holds thousands of cells."""
    r0, c0, r1, c1 = region.bbox
    area = int(np.count_nonzero(nucleus[r0:r1, c0:c1][region.image]))
    return {"nucleus_area_px": area, "nc_ratio": round(area / region.area, 4)}


def median_diameter(label_images, min_cells=1) -> float:
    """The median equivalent diameter sqrt(4 * area / pi), in pixels, of every labelled cell
    (label > 0) across these int label images (any iterable, read one at a time); 0.0 for fewer
    than min_cells cells, and so without any."""
    areas = [np.zeros(0, np.int64)]
    for labels in label_images:  # one at a time: a generator's images are never all held
        counts = np.bincount(labels.ravel())[1:]
        areas.append(counts[counts > 0])  # a number no pixel carries is no cell
    areas = np.concatenate(areas)
    if len(areas) < max(1, min_cells):
        return 0.0
    return float(np.median(np.sqrt(4 * areas / np.pi)))


def median_cell_diameter(masks, min_area, split_depth=0.0, split_hole_px=SPLIT_HOLE_PX,
                         min_cells=1):
    """The median_diameter of every cell in these masks, labelled as label_cells counts them:
    the size of cell a model trained on them learned ([model] cell_diameter_px); 0.0 for fewer
    than min_cells."""
    return median_diameter((label_cells(mask, min_area, split_depth, split_hole_px)
                            for mask in masks), min_cells)


def central_cell(labels, reach=0.25):
    """The label of the cell an image is centred on: the one under its centre pixel, else the
    one whose centroid lies nearest the centre, within reach x the shorter side; 0 for none."""
    height, width = labels.shape
    under = int(labels[height // 2, width // 2])
    if under:
        return under
    best, nearest = 0, reach * min(height, width)
    for region in measure.regionprops(labels):
        off = math.hypot(region.centroid[0] - (height - 1) / 2,
                         region.centroid[1] - (width - 1) / 2)
        if off <= nearest:
            best, nearest = region.label, off
    return best


def count_row(name, labels, mask):
    """The per-image line of the cell-count CSV."""
    areas = sorted(label_areas(labels)[1:].tolist(), reverse=True)
    return {"file": name, "cells": len(areas), "foreground_fraction": round(float(mask.mean()), 6),
            "cell_areas_px": " ".join(map(str, areas))}


def _csv(fields, rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


BLAST_COUNTS = ("blasts", "blast_percent")
BLAST_CALLS = ("blast_probability", "blast")


def add_blast_calls(cells, count, probabilities, threshold):
    """Adds each cell's blast_probability and blast (0/1 at the threshold) to its measure_cells
    row, and the image's blasts and blast_percent to its count_row; probabilities: {label: p}."""
    for row in cells:
        p = probabilities[row["cell"]]
        row.update(blast_probability=round(p, 4), blast=int(p >= threshold))
    blasts = sum(row["blast"] for row in cells)
    count.update(blasts=blasts, blast_percent=round(100 * blasts / len(cells), 2) if cells else 0.0)


def counts_csv(rows, blasts=False):
    """blasts: with the blast columns (a model with a blast call)."""
    return _csv(["file", "cells", *(BLAST_COUNTS if blasts else ()), "foreground_fraction",
                 "cell_areas_px"], rows)


def cells_csv(rows, physical=False, nuclei=False, blasts=False):
    """rows: measure_cells rows, each with a "file" added in front; physical: with the
    micrometre columns (measured with a pixel size); nuclei: with the nucleus columns (measured
    with a nucleus mask); blasts: with the blast call's. Without them the columns are those
    written before nuclei and blast calls existed."""
    fields = ["file", *MEASUREMENTS, *(NUCLEUS_MEASUREMENTS if nuclei else ()),
              *(PHYSICAL if physical else ()), *(NUCLEUS_PHYSICAL if physical and nuclei else ()),
              *(BLAST_CALLS if blasts else ())]
    return _csv(fields, rows)
