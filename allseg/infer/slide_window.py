"""One window of a slide, segmented where a Dask worker runs it: read, predicted, its cells
labelled and measured as an image's are, and those whose centre lies in its core kept, in the
slide's full-resolution coordinates. The result goes to a file of its own (written whole, then
renamed), which is what lets a killed run pick up where it stopped."""
import io
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from allseg.cells.blast_call import call_cells, read_blast_call
from allseg.cells.instances import add_blast_calls, cell_settings, label_cells, measure_cells
from allseg.data.geojson import cell_id, cells_to_geojson
from allseg.core.files import write_bytes
from allseg.data.slides import open_slide
from allseg.infer.engines import load_predictor
from allseg.infer.predict import predict_cells
from allseg.infer.scale import estimate_scale
from allseg.model.shipped import trained_model_path

# Per worker process: the slide files open and the model loaded, kept between its windows
_OPEN = {}


class SlideJob(NamedTuple):
    """What every window of one slide shares (sent to each worker with its windows)."""
    path: str
    level: int
    scale: float        # the resampling at that level (1: as read)
    step: float         # level-0 pixels per pixel of the level
    side: int           # a window's core side, px of the level
    pixel_size_um: float  # of level 0; 0: unknown
    cfg: object         # the run's config, whose model and [infer] cell keys apply
    blast_call: str     # the call's file, or "" for none
    cache: str          # the folder of finished windows


def result_path(job, window):
    return Path(job.cache) / f"{window.index:07d}.npz"


def segment_window(job, window):
    """Segments one window unless a finished result of it is on disk; returns its cell count."""
    target = result_path(job, window)
    if target.is_file():
        with np.load(target) as done:
            return int(done["count"])
    cells, features, labels = find_cells(job, window)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, labels=labels, count=len(cells),
                        cells=json.dumps(cells), features=json.dumps(features))
    write_bytes(target, buffer.getvalue())
    return len(cells)


def estimate_slide_scale(path, cfg, boxes):
    """scale.estimate_scale over these (top, left, height, width) level-0 windows of a slide,
    on a worker, where the model is."""
    slide = _slide(path)
    return estimate_scale(_model(cfg), [slide.read(0, *box) for box in boxes], cfg)


def find_cells(job, window):
    """(cell rows, GeoJSON features, labels of the read box holding only the kept cells, 1..n)."""
    cfg = job.cfg
    rgb = _slide(job.path).read(job.level, window.read_top, window.read_left,
                                window.read_height, window.read_width)
    channels = predict_cells(_model(cfg), [rgb], cfg.model, cfg.train.batch_size, True,
                             job.scale)[0]
    mask = channels[..., 0]
    nucleus = channels[..., 1] if channels.shape[-1] == 2 else None
    labels = label_cells(mask, *cell_settings(cfg.infer, job.scale))
    rows = measure_cells(labels, rgb, job.pixel_size_um * job.step, nucleus)
    kept = [row for row in rows if window.holds(row["centroid_row"], row["centroid_col"])]
    renumber = np.zeros(len(rows) + 1, np.uint32)
    renumber[[row["cell"] for row in kept]] = np.arange(1, len(kept) + 1, dtype=np.uint32)
    labels = renumber[labels]
    for new, row in enumerate(kept, start=1):
        row["cell"] = new
    if job.blast_call:
        call = _blast_call(job.blast_call)
        add_blast_calls(kept, {}, call_cells(call, rgb, labels, job.step), call.threshold)
    origin = (window.read_top, window.read_left)
    features = cells_to_geojson(labels, Path(job.path).stem, nucleus, kept, origin,
                                job.step)["features"]
    return [in_slide_pixels(row, origin, job.step) for row in kept], features, labels


def in_slide_pixels(row, origin, step):
    """A measure_cells row of a window, its positions and sizes in level-0 pixels of the slide."""
    out = dict(row)
    for key, shift in (("centroid_row", origin[0]), ("centroid_col", origin[1]),
                       ("bbox_row0", origin[0]), ("bbox_row1", origin[0]),
                       ("bbox_col0", origin[1]), ("bbox_col1", origin[1])):
        out[key] = round((row[key] + shift) * step, 2) if step != 1 else row[key] + shift
    for key, power in (("area_px", 2), ("perimeter_px", 1), ("equivalent_diameter_px", 1),
                       ("nucleus_area_px", 2)):
        if key in out and step != 1:
            out[key] = round(row[key] * step ** power, 2)
    return out


def renumbered(features, rows, stem, first):
    """The window's features and rows with the slide-wide cell numbers first, first + 1, ...:
    ids and the measurements' "cell" as an image's cells carry them."""
    for number, (feature, row) in enumerate(zip(features, rows), start=first):
        row["cell"] = number
        feature["id"] = cell_id(stem, number)
        feature["properties"]["measurements"]["cell"] = float(number)
    return features, rows


def _kept(key, load):
    """What load() gives, made once per worker process and kept for its later windows."""
    if key not in _OPEN:
        _OPEN[key] = load()
    return _OPEN[key]


def _slide(path):
    return _kept(("slide", path), lambda: open_slide(path))


def _model(cfg):
    key = ("model", str(trained_model_path(cfg)), cfg.infer.engine)
    return _kept(key, lambda: load_predictor(cfg, log=lambda *_: None))


def _blast_call(path):
    return _kept(("call", path), lambda: read_blast_call(path))
