"""Whole slides, segmented a window at a time on a Dask cluster: by default one on this machine
(a worker a core), or an existing one ([infer] scheduler, --scheduler) that the same code reaches
without change. Finished windows stay on disk until the slide's outputs are written, so a rerun
of a killed run does only the windows it had not done, and writes what an unbroken run writes."""
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster, as_completed

from allseg.cells.blast_call import blast_call_path, magnification_warning, read_blast_call
from allseg.core.errors import DataError, UserError
from allseg.core.files import make_folder
from allseg.data.slides import downsample, open_slide, thumbnail
from allseg.infer.scale import resampling
from allseg.infer.slide_outputs import SlidePlaces, write_slide_outputs
from allseg.infer.slide_plan import choose_level, margin_px, plan_windows, tissue_mask
from allseg.infer.slide_window import SlideJob, estimate_slide_scale, segment_window
from allseg.model.shipped import trained_model_path

SAMPLE_WINDOWS = 4  # level-0 windows of tissue the cells' size is read from ("auto")
SAMPLE_SIDE = 1024
TYPICAL_CELL_UM = 10.0  # a lymphocyte or blast across, for a slide whose cells auto cannot size


@contextmanager
def dask_client(scheduler="", workers=0):
    """A distributed Client: of the cluster at ``scheduler``, or of a LocalCluster of
    ``workers`` single-threaded processes (0: one a core) that closes with the block."""
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise UserError(f"[infer] scheduler = \"{scheduler}\": no Dask scheduler answers "
                            f"there ({exc}); start one, or leave the setting empty for a "
                            "cluster on this machine") from None
        with client:
            yield client
        return
    count = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def segment_slides(cfg, slides, places, log=print):
    """Segments each slide; returns (count rows, written, failed): a slide that cannot be read
    or segmented is named in failed and the others go on."""
    rows, written, failed = [], [], []
    with dask_client(cfg.infer.scheduler, cfg.infer.slide_workers) as client:
        for number, path in enumerate(slides, start=1):
            log(f"Slide {number} of {len(slides)}: {path.name}")
            try:
                row, label_store = segment_slide(client, cfg, path, places, log)
            except UserError as exc:
                failed.append((path, str(exc)))
                log(f"error: {exc} (skipped; the other slides go on)")
                continue
            rows.append(row)
            written.append(label_store)
    return rows, written, failed


def segment_slide(client, cfg, path, places, log=print):
    """One slide's windows on the cluster, then its outputs; returns (count row, label store)."""
    slide = open_slide(path)
    try:
        thumb, thumb_step = thumbnail(slide)
        job, windows = plan_slide(client, cfg, slide, thumb, thumb_step, places, log)
        shape = slide.shapes[job.level]
    finally:
        slide.close()
    counts = run_windows(client, job, windows, path.name)
    row, label_store, diameters = write_slide_outputs(client, job, windows, counts,
                                                      (thumb, thumb_step), places, shape)
    shutil.rmtree(job.cache, ignore_errors=True)  # the windows' results: the project's own
    warning = job.blast_call and magnification_warning(read_blast_call(job.blast_call), diameters)
    if warning:
        log(f"  {warning}")
    return row, label_store


def plan_slide(client, cfg, slide, thumb, thumb_step, places, log):
    """(SlideJob, windows with tissue): the level and scale read, and where the results go."""
    pixel_um = cfg.infer.pixel_size_um or slide.pixel_size_um or 0.0
    tissue = tissue_mask(thumb)
    scale0, exact = slide_scale(client, cfg, slide, (tissue, thumb_step, pixel_um), log)
    level, scale = choose_level(slide, scale0, exact)
    step = downsample(slide, level)
    margin = margin_px(cfg.model.cell_diameter_px or 30.0, scale)
    side = cfg.infer.slide_window
    windows = plan_windows(slide.shapes[level], side, margin, tissue, thumb_step / step)
    grid = -(-slide.shapes[level][0] // side) * -(-slide.shapes[level][1] // side)
    log(f"  level {level} of {len(slide.shapes)} ({slide.shapes[level][1]} x "
        f"{slide.shapes[level][0]} px, {step:.3g} level-0 px a pixel), resampled by "
        f"{scale:.3g}; {len(windows)} of {grid} windows hold tissue; pixel size "
        + (f"{pixel_um:g} um" if pixel_um else "unknown (pixels only)"))
    call = blast_call_file(cfg)
    key = settings_key(cfg, slide.path, (level, scale, margin, side), call)
    cache = Path(places.labels) / f".{slide.path.stem}.{key}.windows"
    make_folder(cache, "the slide's finished windows")
    job = SlideJob(str(slide.path), level, scale, step, side, pixel_um, cfg, call, str(cache))
    return job, windows


def slide_scale(client, cfg, slide, seen, log):
    """(scale0, exact): the factor that gives level-0 cells the learned size, and whether it is
    applied exactly (a size the user gave) or within resampling's tolerance ("auto"). seen:
    (tissue mask, level-0 pixels a mask pixel, pixel size or 0). Where "auto" finds no cells to
    size, the pixel size gives their size (TYPICAL_CELL_UM); without one, the slide is refused
    rather than read for hours at a guess."""
    tissue, thumb_step, pixel_um = seen
    if cfg.infer.cell_diameter != "auto" or not cfg.model.cell_diameter_px:
        factor, note = resampling(cfg)
        if note:
            log(f"  {note}")
        return factor, True
    boxes = sample_boxes(slide.shapes[0], tissue, thumb_step)
    found = client.submit(estimate_slide_scale, str(slide.path), cfg, boxes, pure=False).result()
    learned = cfg.model.cell_diameter_px
    if found is None and not pixel_um:
        raise DataError(f"{slide.path}: the model found no cells it could size in "
                        f"{len(boxes)} windows of tissue, and the slide records no pixel size: "
                        "give --cell-diameter PX (its white cells' size in level-0 pixels) or "
                        "--pixel-size-um UM")
    if found is None:
        log(f"  Scale: auto found no cells to size; white cells taken as {TYPICAL_CELL_UM:g} um "
            f"across, {TYPICAL_CELL_UM / pixel_um:.3g} px at {pixel_um:g} um a pixel")
        return learned * pixel_um / TYPICAL_CELL_UM, False
    log(f"  Scale: auto from {len(boxes)} windows of tissue: cells about "
        f"{learned / found:.3g} level-0 px across")
    return found, False


def sample_boxes(shape, tissue, thumb_step, count=SAMPLE_WINDOWS, side=SAMPLE_SIDE):
    """Up to count (top, left, height, width) level-0 boxes centred on tissue, spread evenly
    through it in reading order."""
    points = np.argwhere(tissue)
    if not len(points):
        return []
    picks = points[np.linspace(0, len(points) - 1, count + 2).round().astype(int)[1:-1]]
    boxes = []
    for row, col in picks:
        top = int(min(max(0, (row + 0.5) * thumb_step - side / 2), max(0, shape[0] - side)))
        left = int(min(max(0, (col + 0.5) * thumb_step - side / 2), max(0, shape[1] - side)))
        boxes.append((top, left, min(side, shape[0]), min(side, shape[1])))
    return sorted(set(boxes))


def blast_call_file(cfg):
    path = blast_call_path(trained_model_path(cfg))
    return str(path) if path.is_file() else ""


def settings_key(cfg, path, geometry, call):
    """A short hash of everything a window's result depends on: a rerun with other settings (or
    another model, or a changed slide) starts afresh instead of mixing results."""
    def stamp(p):
        if not p:
            return ""
        info = Path(p).stat()
        return f"{Path(p).resolve()}:{info.st_size}:{info.st_mtime_ns}"
    parts = [stamp(path), stamp(trained_model_path(cfg)), stamp(call), geometry,
             sorted(vars(cfg.model).items()),
             [getattr(cfg.infer, k) for k in ("cell_min_area", "cell_split_depth",
                                              "cell_split_hole_px", "engine", "pixel_size_um")]]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def run_windows(client, job, windows, name):
    """Runs every window on the cluster with a progress bar (windows done, cells so far);
    returns {window index: cells}. A window that fails stops the slide, naming it."""
    progress = WindowProgress(len(windows))
    futures = client.map(segment_window, [job] * len(windows), windows, pure=False)
    counts = {}
    owner = {future.key: window.index for future, window in zip(futures, windows)}
    try:
        for future in as_completed(futures):
            counts[owner[future.key]] = future.result()
            progress.update(len(counts), sum(counts.values()))
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001  a reader's or library's error in a window
        raise DataError(f"{name}: a window could not be segmented "
                        f"({type(exc).__name__}: {exc}); finished windows are kept for a "
                        "rerun") from None
    finally:
        client.cancel(futures)
    return counts


class WindowProgress:
    """A slide's progress line: windows done of all, cells so far, time a window and left. At a
    terminal it is redrawn for each window; in a log, a line every twentieth of the slide."""

    def __init__(self, total):
        self.total, self.start = total, time.perf_counter()
        self.every = 1 if sys.stdout.isatty() else max(1, total // 20)

    def update(self, done, cells):
        if done % self.every and done != self.total:
            return
        each = (time.perf_counter() - self.start) / done
        line = (f"  windows {done}/{self.total}, {cells:,} cells so far, {each:.1f} s a window, "
                f"about {each * (self.total - done) / 60:.0f} min left")
        ending = "\n" if done == self.total or not sys.stdout.isatty() else ""
        print(("\r" if sys.stdout.isatty() else "") + line, end=ending, flush=True)
