"""Cells as QuPath reads and writes them: GeoJSON outlines to a label image, and back.

QuPath places pixel (row r, column c) on the square [c, c + 1] x [r, r + 1] (x = column, y = row)
and counts a pixel as inside an outline when its centre is. Outlines written here run along the
pixel corners of each cell, so reading them back by that rule gives exactly the cell's pixels.

A QuPath export is a FeatureCollection, or a bare list of features (as older versions, and newer
ones with "Export as FeatureCollection" unticked, write it). A cell is a feature with ``properties.objectType == "cell"``, its whole outline as
``geometry`` and its nucleus as the feature's ``nucleusGeometry``; detections and annotations have
``geometry`` only.
"""
import json
import numbers
import uuid

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry import shape
from skimage import draw, segmentation

from allseg.core.errors import DataError

# QuPath 0.2 named the object type in the feature's "id" instead of properties.objectType.
OLD_OBJECT_TYPES = {"PathCellObject": "cell", "PathDetectionObject": "detection",
                    "PathAnnotationObject": "annotation"}
# Objects that outline cells themselves; an annotation is only taken as a cell when a file holds
# none of these, because cell detection in QuPath runs inside an annotation (the region drawn
# around the cells), which would otherwise become one huge cell over them all.
CELL_OBJECTS = ("cell", "detection")
# The namespace of the cells' feature ids: the same file stem and cell number give the same id
# on every run, so a re-run's GeoJSON replaces the same objects in a QuPath project.
CELL_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "allseg/qupath-cell")


# ---- reading ---------------------------------------------------------------------------------

def read_features(path):
    """The features of a QuPath GeoJSON file: a FeatureCollection, a bare list of features or a
    single feature. A file that does not parse, or holds something else, is a DataError naming
    it."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file, so not GeoJSON") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid GeoJSON: {exc.msg} at line {exc.lineno}, "
                        f"column {exc.colno}; export it from QuPath again") from None
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        data = data.get("features")
    elif isinstance(data, dict) and data.get("type") == "Feature":
        data = [data]
    if not isinstance(data, list) or not all(isinstance(f, dict) for f in data):
        raise DataError(f"{path}: not a GeoJSON FeatureCollection or list of features, as QuPath "
                        "exports them")
    return data


def object_type(feature):
    """"cell", "detection", "annotation" (also for plain GeoJSON without QuPath's properties),
    or whatever other type QuPath wrote (a tile, a TMA core)."""
    properties = feature.get("properties") or {}
    if "objectType" in properties:
        return properties["objectType"]
    return OLD_OBJECT_TYPES.get(feature.get("id"), "annotation")


def cell_features(features):
    """[(number in the file, feature)] of the features that outline cells: cells and detections,
    or where a file has neither, its annotations (see CELL_OBJECTS). Tiles and TMA cores are
    never cells."""
    types = [object_type(f) for f in features]
    wanted = CELL_OBJECTS if any(t in CELL_OBJECTS for t in types) else ("annotation",)
    return [(number, f) for number, (f, t) in enumerate(zip(features, types), start=1)
            if t in wanted]


def polygons(geometry, path, what):
    """The polygons of a GeoJSON geometry dict, made valid (a hand-drawn outline may cross
    itself); points and lines outline no area and give none."""
    try:
        parsed = shape(geometry)
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise DataError(f"{path}: {what} is not a GeoJSON geometry ({exc})") from None
    if not parsed.is_valid:
        parsed = shapely.make_valid(parsed)
    return [p for p in shapely.get_parts(parsed) if p.geom_type == "Polygon" and not p.is_empty]


def _fill_ring(out, ring, value, top, left):
    """Sets the pixels of ``out`` (whose [0, 0] is image pixel (top, left)) whose centres lie
    inside the ring. skimage tests pixel centres, as QuPath does; cv2.fillPoly also fills every
    pixel an edge touches, which grows each cell by a pixel."""
    x, y = np.asarray(ring.coords).T
    rows, cols = draw.polygon(y - 0.5 - top, x - 0.5 - left, out.shape)
    out[rows, cols] = value


def image_window(bounds, height, width):
    """The (rows, cols) slices of the pixels that (x0, y0, x1, y1) bounds cover in a height x
    width image, or None when they lie outside it."""
    x0, y0, x1, y1 = bounds
    top, left = max(int(np.floor(y0)), 0), max(int(np.floor(x0)), 0)
    bottom, right = min(int(np.ceil(y1)), height), min(int(np.ceil(x1)), width)
    return (slice(top, bottom), slice(left, right)) if bottom > top and right > left else None


def rasterize_polygons(parts, height, width):
    """((rows, cols), mask): the pixels inside these polygons (their holes left out), as a boolean
    mask of the window of a height x width image that holds them (a cell is small, an image may
    be a scan); None when none of them reaches into the image."""
    window = image_window(shapely.total_bounds(parts), height, width) if parts else None
    if window is None:
        return None
    rows, cols = window
    mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), bool)
    for polygon in parts:
        # Each polygon is filled on its own: a hole must empty only this polygon's pixels.
        piece = np.zeros_like(mask)
        _fill_ring(piece, polygon.exterior, True, rows.start, cols.start)
        for hole in polygon.interiors:
            _fill_ring(piece, hole, False, rows.start, cols.start)
        mask |= piece
    return (window, mask) if mask.any() else None


def rasterize_features(features, height, width, path=""):
    """(labels, nucleus) of these features drawn on a height x width image: int32 labels, 0
    background and 1..n one per cell (a later outline covers an earlier one where they overlap),
    and a boolean nucleus mask (from the cells' nucleusGeometry, kept inside the cells), or None
    when no cell has a nucleus. ``path`` names the file in error messages.

    An outline wholly outside the image is passed over. When every one is, the GeoJSON belongs to
    another image (or to a larger one this image was cut from); when its objects are all points or
    lines, it outlines no cell: both are DataErrors, rather than an image read as background."""
    labels = np.zeros((height, width), np.int32)
    nucleus = None
    cells = cell_features(features)
    outlines = drawn = 0
    for number, feature in cells:
        parts = polygons(feature.get("geometry"), path, f"feature {number}'s geometry")
        outlines += bool(parts)
        cell = rasterize_polygons(parts, height, width)
        if cell is None:
            continue
        (rows, cols), inside = cell
        drawn += 1
        labels[rows, cols][inside] = drawn
        if feature.get("nucleusGeometry") is not None:
            what = f"feature {number}'s nucleusGeometry"
            found = rasterize_polygons(polygons(feature["nucleusGeometry"], path, what),
                                       height, width)
            if nucleus is None:
                nucleus = np.zeros((height, width), bool)
            if found is not None:
                (rows, cols), inside = found
                nucleus[rows, cols] |= inside
    if cells and not outlines:
        raise DataError(f"{path}: its {len(cells)} object(s) are points or lines, which outline "
                        "no cell; export the cells' outlines (polygons)")
    if outlines and not drawn:
        raise DataError(f"{path}: none of its {outlines} outline(s) lies inside the "
                        f"{width}x{height} image; is it the GeoJSON of another image, or of a "
                        "larger image this one was cut from?")
    labels, _, _ = segmentation.relabel_sequential(labels)  # outlines hidden by later ones
    if nucleus is not None:
        nucleus &= labels > 0  # a nucleus belongs to its cell, never to the background
    return labels.astype(np.int32), nucleus


def read_qupath_cells(path, height, width):
    """(labels, nucleus) of a QuPath GeoJSON file drawn at the size of its image: see
    rasterize_features."""
    return rasterize_features(read_features(path), height, width, path)


# ---- writing ---------------------------------------------------------------------------------

def pixel_outline(mask, top=0, left=0):
    """The exact outline of a boolean mask's pixels as a shapely (Multi)Polygon in QuPath's
    coordinates, holes included, for a mask cut out of its image at (top, left). Each horizontal
    run of pixels is a rectangle whose corners are pixel corners, and shapely unites them
    (simplify(0) then drops the points left along straight edges). cv2.findContours would trace
    the border pixels' centres instead: half a pixel inside the cell, a sixth of the area of a
    300-pixel one, with the border pixels' centres on the outline itself."""
    padded = np.pad(mask, ((0, 0), (1, 1))).astype(np.int8)
    steps = np.diff(padded, axis=1)
    run_rows, run_starts = np.nonzero(steps == 1)  # row-major order pairs each start
    _, run_ends = np.nonzero(steps == -1)          # with the end of the same run
    runs = shapely.box(left + run_starts, top + run_rows, left + run_ends, top + run_rows + 1)
    return shapely.simplify(shapely.union_all(runs), 0)


def _geometry_json(mask, top, left, step=1.0):
    """GeoJSON geometry dict of the outline of a mask cut out of its image at (top, left); with
    step != 1 (a slide read at a coarser level), in pixels step times smaller."""
    outline = pixel_outline(mask, top, left)
    if step != 1.0:
        outline = shapely.transform(outline, lambda points: points * step)
    return json.loads(shapely.to_geojson(outline))


def cell_id(stem, cell):
    """The feature id of cell number ``cell`` of the image ``stem``: a UUID, as QuPath gives its
    objects, the same on every run (uuid5)."""
    return str(uuid.uuid5(CELL_ID_NAMESPACE, f"{stem}/{cell}"))


def qupath_measurements(row):
    """A measurement dict as QuPath holds one: names to numbers (True/False as 1/0). Text (a
    file name) has no place in QuPath's measurement list and is left out."""
    return {name: float(value) for name, value in row.items()
            if isinstance(value, numbers.Real)}


# QuPath's classes for a cell the blast call made (colours as QuPath packs them: RGB)
CLASSES = {True: {"name": "Blast", "color": [220, 30, 30]},
           False: {"name": "Normal", "color": [40, 160, 255]}}


def cells_to_geojson(labels, stem, nucleus=None, measurements=None, origin=(0, 0), step=1.0):
    """A QuPath GeoJSON FeatureCollection of the cells of an int label image (0 background): one
    cell object per label, in label order, with its whole outline as ``geometry``, its nucleus
    (``nucleus & cell``, where a boolean nucleus mask is given and the cell has one) as
    ``nucleusGeometry`` and, given one dict per cell in label order (measure_cells's rows), its
    ``properties.measurements``. ``stem`` (the image's file stem) seeds the feature ids. A
    window of a slide gives its (row, col) origin in the level read and that level's step (level-0
    pixels a pixel): the outlines are then in the slide's full-resolution pixels."""
    # Each cell is outlined in its own bounding box (None for a number no pixel carries).
    boxes = [(number, box) for number, box in enumerate(ndimage.find_objects(labels), start=1)
             if box is not None]
    if measurements is not None and len(measurements) != len(boxes):
        raise ValueError(f"{len(measurements)} measurement rows for {len(boxes)} cells")
    features = []
    for index, (number, (rows, cols)) in enumerate(boxes):
        cell = labels[rows, cols] == number
        top, left = rows.start + origin[0], cols.start + origin[1]
        feature = {"type": "Feature", "id": cell_id(stem, number),
                   "geometry": _geometry_json(cell, top, left, step)}
        inner = cell & nucleus[rows, cols] if nucleus is not None else None
        if inner is not None and inner.any():
            feature["nucleusGeometry"] = _geometry_json(inner, top, left, step)
        properties = {"objectType": "cell"}
        if measurements is not None:
            properties["measurements"] = qupath_measurements(measurements[index])
            if "blast" in measurements[index]:  # a model with a blast call
                properties["classification"] = CLASSES[bool(measurements[index]["blast"])]
        feature["properties"] = properties
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}

