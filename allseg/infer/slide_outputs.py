"""A slide's outputs, from its finished windows: the cells CSV and QuPath GeoJSON in the slide's
full-resolution pixels, its count row, a thumbnail with the cells drawn, and the label image as
a chunked zarr store (a chunk a window) that napari or zarr opens a piece at a time. Each file is
written whole under a temporary name and then renamed: a killed run leaves no output that looks
complete and is not."""
import json
import shutil
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import zarr

from allseg.cells.instances import cells_csv
from allseg.core.errors import DataError, UserError
from allseg.core.files import make_folder, replace_atomically
from allseg.data.images import write_png
from allseg.infer.outputs import BLAST_COLOUR, CELL_COLOUR, NORMAL_COLOUR
from allseg.infer.slide_plan import neighbours
from allseg.infer.slide_window import renumbered, result_path

CHUNK_SEPARATOR = b","


class SlidePlaces(NamedTuple):
    """Where a slide's outputs go: <labels>/<stem>.zarr, <geojson>/<stem>.geojson,
    <overlays>/<stem>.png, and its cells beside the run's cells CSV as <cells>-<stem>.csv."""
    labels: Path
    geojson: Path
    overlays: Path
    cells_csv: Path

    def cells_of(self, stem):
        return self.cells_csv.with_name(f"{self.cells_csv.stem}-{stem}.csv")


def write_slide_outputs(client, job, windows, counts, thumb, places, shape):
    """Writes the slide's outputs from its finished windows; returns (count row, label store,
    the cells' equivalent diameters in level-0 pixels). counts: {window index: cells}; thumb:
    (thumbnail, level-0 pixels a thumbnail pixel)."""
    stem, name = Path(job.path).stem, Path(job.path).name
    first = {}
    total = 0
    for window in windows:  # cells numbered through the slide in window order
        first[window.index] = total + 1
        total += counts[window.index]
    cells = write_cells(job, windows, first, places, stem, name)
    label_store = write_label_store(client, job, windows, first, places.labels / f"{stem}.zarr",
                                    shape)
    write_png(places.overlays / f"{stem}.png", drawn(thumb[0], thumb[1], cells))
    return count_row(name, cells, shape, job.step), label_store, [c[2] for c in cells]


def write_cells(job, windows, first, places, stem, name):
    """The cells CSV and GeoJSON, streamed a window at a time; returns the per-cell
    (row, col, diameter, area, blast) the thumbnail and counts need."""
    physical = job.pixel_size_um > 0
    nuclei = job.cfg.model.num_classes == 2
    summary = []
    make_folder(places.cells_csv.parent, "the cells CSV's folder")
    with replace_atomically(places.cells_of(stem)) as csv_tmp, \
            replace_atomically(places.geojson / f"{stem}.geojson") as geo_tmp, \
            open(csv_tmp, "w", encoding="utf-8") as table, open(geo_tmp, "wb") as geo:
        table.write(cells_csv([], physical, nuclei, bool(job.blast_call)))
        geo.write(b'{"type":"FeatureCollection","features":[')
        written = 0
        for window in windows:
            features, rows = window_cells(job, window, stem, first[window.index])
            for row in rows:
                row["file"] = name
            text = cells_csv(rows, physical, nuclei, bool(job.blast_call))
            table.write(text.split("\n", 1)[1])
            for feature in features:
                geo.write((CHUNK_SEPARATOR if written else b"") + _compact(feature))
                written += 1
            summary += [(r["centroid_row"], r["centroid_col"], r["equivalent_diameter_px"],
                         r["area_px"], r.get("blast")) for r in rows]
        geo.write(b"]}")
    return summary


def _compact(feature):
    return json.dumps(feature, separators=(",", ":")).encode()


def window_cells(job, window, stem, first):
    """The window's GeoJSON features and cell rows, numbered from first."""
    with np.load(result_path(job, window)) as done:
        return renumbered(json.loads(str(done["features"])), json.loads(str(done["cells"])),
                          stem, first)


def write_label_store(client, job, windows, first, target, shape):
    """The slide's cell labels (uint32, 0 background) at the level read, as a zarr store chunked
    a window a chunk: each chunk painted on a worker from the windows that reach it."""
    make_folder(target.parent, "the labels folder")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # a killed run's, never complete
    store = zarr.open_array(str(partial), mode="w", shape=shape, dtype=np.uint32,
                            chunks=(job.side, job.side), fill_value=0)
    store.attrs.update({"slide": Path(job.path).name, "level": job.level,
                        "level0_pixels_per_pixel": job.step})
    by_index = {window.index: window for window in windows}
    columns = -(-shape[1] // job.side)
    futures = client.map(paint_chunk, [job] * len(windows), windows,
                         [neighbours(w, by_index, columns) for w in windows],
                         [first] * len(windows), [str(partial)] * len(windows), pure=False)
    try:
        client.gather(futures)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001  zarr's or the file system's, from a worker
        raise DataError(f"{target}: the label store could not be written "
                        f"({type(exc).__name__}: {exc}); the finished windows are kept for a "
                        "rerun") from None
    if target.exists():  # this run's output replaces an earlier run's, as a PNG would
        shutil.rmtree(target)
    partial.rename(target)
    return target


def paint_chunk(job, window, sources, first, store):
    """Writes one window's core of the label store: the cells of each window whose read box
    reaches it, numbered through the slide; the window's own cells last (they win a contested
    pixel)."""
    chunk = np.zeros((window.height, window.width), np.uint32)
    for source in sorted(sources, key=lambda s: (s.index == window.index, s.index)):
        top, left = max(window.top, source.read_top), max(window.left, source.read_left)
        bottom = min(window.top + window.height, source.read_top + source.read_height)
        right = min(window.left + window.width, source.read_left + source.read_width)
        if bottom <= top or right <= left:
            continue
        with np.load(result_path(job, source)) as done:
            part = done["labels"][top - source.read_top:bottom - source.read_top,
                                  left - source.read_left:right - source.read_left]
        region = chunk[top - window.top:bottom - window.top, left - window.left:right - window.left]
        np.copyto(region, part + np.uint32(first[source.index] - 1), where=part > 0)
    zarr.open_array(store, mode="r+")[window.top:window.top + window.height,
                                      window.left:window.left + window.width] = chunk


def drawn(thumb, step, cells):
    """The thumbnail with each cell a circle of its size at its centre: yellow, or with a blast
    call red for blasts and blue for the others."""
    out = thumb.copy()
    for row, col, diameter, _, blast in cells:
        colour = CELL_COLOUR if blast is None else (BLAST_COLOUR if blast else NORMAL_COLOUR)
        cv2.circle(out, (int(col / step), int(row / step)), max(1, round(diameter / 2 / step)),
                   colour, 1)
    return out


def count_row(name, cells, shape, step):
    """The slide's line of the cell-count CSV. Its cells' areas are left to its cells CSV: a
    slide's hundred thousand would make one field of a megabyte, past what CSV readers take."""
    area = sum(area for *_, area, _ in cells)
    row = {"file": name, "cells": len(cells),
           "foreground_fraction": round(area / (shape[0] * shape[1] * step ** 2), 6),
           "cell_areas_px": ""}
    if cells and cells[0][4] is not None:
        blasts = sum(blast for *_, blast in cells)
        row.update(blasts=blasts, blast_percent=round(100 * blasts / len(cells), 2))
    return row
