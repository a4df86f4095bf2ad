"""One image's outputs after prediction: its cells, measurements, overlay, PNGs and GeoJSON."""
import json
from pathlib import Path
from typing import NamedTuple, Optional

import cv2
import numpy as np
from scipy import ndimage

from allseg.cells.blast_call import call_cells
from allseg.cells.instances import add_blast_calls, count_row, label_cells, measure_cells
from allseg.core.errors import DataError
from allseg.core.files import write_text
from allseg.data.geojson import cells_to_geojson
from allseg.data.images import write_png

OVERLAY_COLOUR = (0, 255, 0)  # RGB
CELL_COLOUR = (255, 255, 0)  # RGB: yellow outlines
BLAST_COLOUR, NORMAL_COLOUR = (230, 0, 0), (0, 90, 255)  # RGB: a blast call's red and blue
NUCLEUS_COLOUR = (255, 0, 255)  # RGB: magenta, apart from the green tint and yellow outlines
OVERLAY_SIDE = 700  # px: the largest image side lines and numbers are sized for
MONTAGE_TILE = 160
MONTAGE_MAX_IMAGES = 10
LABEL_FONT, LABEL_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.42  # the montage's titles


def overlay(rgb, mask, labels=None, nucleus=None, blasts=None):
    """The image with the mask tinted green; each cell of ``labels`` outlined in yellow and
    numbered at its centre as in the cells CSV (without labels: the mask's outline). Given a
    nucleus mask (a model with two classes), each cell's nucleus is outlined in thin magenta.
    Given blasts ({label: 0/1}, a model with a blast call), blasts are outlined in red and the
    other cells in blue, with a legend."""
    out = rgb.copy()
    out[mask] = (0.6 * out[mask] + 0.4 * np.array(OVERLAY_COLOUR)).astype(np.uint8)
    # Lines and numbers grow with the image up to a screen's size, not beyond: past it the image
    # is zoomed into, and a slide scan's cells stay about 20 px across (36 px lines hid them)
    side = min(max(rgb.shape[:2]), OVERLAY_SIDE)
    thickness = max(1, round(side / 300))
    if labels is None:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (255, 255, 0), thickness)
        return out
    scale = max(0.3, side / 700)
    # Each cell within its bounding box: large images hold thousands of cells.
    for cell, (ys, xs) in enumerate(ndimage.find_objects(labels), start=1):
        one = (labels[ys, xs] == cell).astype(np.uint8)
        contours, _ = cv2.findContours(one, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                       offset=(xs.start, ys.start))
        cv2.drawContours(out, contours, -1, _cell_colour(blasts, cell), thickness)
        if nucleus is not None:  # drawn before the number, which stays readable on top
            _outline(out, one & nucleus[ys, xs], (ys.start, xs.start), max(1, thickness // 2))
        rows, cols = np.nonzero(one)
        text, at = str(cell), (xs.start + int(cols.mean()) - 4, ys.start + int(rows.mean()) + 4)
        cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2,
                    cv2.LINE_AA)
        cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                    cv2.LINE_AA)
    if blasts is not None:
        _legend(out, scale, thickness)
    return out


def _cell_colour(blasts, cell):
    if blasts is None:
        return CELL_COLOUR
    return BLAST_COLOUR if blasts.get(cell) else NORMAL_COLOUR


def _legend(out, scale, thickness):
    """"blast" in red over "normal" in blue, on white, in the top left corner."""
    for line, (text, colour) in enumerate((("blast", BLAST_COLOUR), ("normal", NORMAL_COLOUR))):
        (width, height), _ = cv2.getTextSize(text, LABEL_FONT, scale, thickness)
        top = 2 + line * (height + 8)
        cv2.rectangle(out, (0, top), (width + 6, top + height + 6), (255, 255, 255), -1)
        cv2.putText(out, text, (3, top + height + 2), LABEL_FONT, scale, colour, thickness,
                    cv2.LINE_AA)


def _outline(out, part, at, thickness):
    """Outlines a cell's nucleus (a 0/1 image cut out of the image at (row, col) ``at``) in
    magenta."""
    contours, _ = cv2.findContours(part.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                   offset=(at[1], at[0]))
    cv2.drawContours(out, contours, -1, NUCLEUS_COLOUR, thickness)


def montage_column(*images):
    """Thumbnails of one image's input, mask and overlay, stacked (kept small: inputs may be huge)."""
    tile = MONTAGE_TILE
    thumbs = [cv2.resize(t if t.ndim == 3 else cv2.cvtColor(t, cv2.COLOR_GRAY2RGB),
                         (tile, tile), interpolation=cv2.INTER_AREA) for t in images]
    return np.concatenate(thumbs, axis=0)


def montage(columns, labels):
    """A grid: one column per image; rows are input, predicted mask and overlay."""
    tile = MONTAGE_TILE
    grid = np.concatenate(columns, axis=1)
    label_bar = np.full((24, grid.shape[1], 3), 255, np.uint8)
    for i, text in enumerate(labels):
        cv2.putText(label_bar, fit_label(text, tile - 8), (i * tile + 4, 17), LABEL_FONT,
                    LABEL_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([label_bar, grid], axis=0)


def fit_label(text, width):
    """"name: N cells" shortened to fit width pixels: the name loses its end ("synthet..: 3
    cells"), the count is always kept."""
    def wide(t):
        return cv2.getTextSize(t, LABEL_FONT, LABEL_SCALE, 1)[0][0] > width
    name, sep, count = text.rpartition(": ")
    if not sep:
        name, count = text, ""
    while wide(text) and name:
        name = name[:-1]
        text = f"{name}..{sep}{count}"
    return text


class OutputDirs(NamedTuple):
    """The folders one image's files go to; nuclei only for a model with two classes."""
    masks: Path
    overlays: Path
    labels: Path
    geojson: Path
    nuclei: Optional[Path] = None


def write_outputs(path, rgb, mask, dirs, want_tile, cell_keys, pixel_size_um, nucleus=None,
                  blast_call=None):
    """Writes one image's mask, cell labels, overlay and cells' GeoJSON, and with a nucleus mask
    (a model with two classes) its nuclei PNG; returns (path, mask path, cell-count row, per-cell
    rows, montage column or None). dirs: OutputDirs; cell_keys: cell_settings(), in this image's
    pixels; blast_call: a BlastCall, which adds each cell's call to its row."""
    labels = label_cells(mask, *cell_keys)
    if labels.max() > np.iinfo(np.uint16).max:
        raise DataError(f"{path}: {labels.max()} cells do not fit a 16-bit label PNG")
    mask_png = mask.view(np.uint8) * np.uint8(255)
    mask_path = dirs.masks / f"{path.stem}.png"
    write_png(mask_path, mask_png)
    if nucleus is not None:
        write_png(dirs.nuclei / f"{path.stem}.png", nucleus.view(np.uint8) * np.uint8(255))
    write_png(dirs.labels / f"{path.stem}.png", labels.astype(np.uint16))
    cells = [{"file": path.name, **row}
             for row in measure_cells(labels, rgb, pixel_size_um, nucleus)]
    row = count_row(path.name, labels, mask)
    blasts = None
    if blast_call is not None:
        add_blast_calls(cells, row, call_cells(blast_call, rgb, labels), blast_call.threshold)
        blasts = {cell["cell"]: cell["blast"] for cell in cells}
    write_geojson(dirs.geojson / f"{path.stem}.geojson", labels, path.stem, nucleus, cells)
    shown = overlay(rgb, mask, labels, nucleus, blasts)
    del labels  # a scan's images are large: each goes once it is written
    write_png(dirs.overlays / f"{path.stem}.png", shown)
    tile = montage_column(rgb, mask_png, shown) if want_tile else None
    return path, mask_path, row, cells, tile


def write_geojson(target, labels, stem, nucleus, cells):
    """The image's cells as a QuPath GeoJSON FeatureCollection (File > Import objects), each
    with its nucleus if it has one and its cells CSV row as measurements. Compact: a scan's
    file holds thousands of outlines."""
    collection = cells_to_geojson(labels, stem, nucleus, cells)
    write_text(target, json.dumps(collection, separators=(",", ":")))
