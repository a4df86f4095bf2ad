"""Predicts a mask for every image in a folder, at each image's own size."""
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from keras.utils import Progbar

from allseg.cells.blast_call import blast_call_path, magnification_warning, read_blast_call
from allseg.cells.instances import cell_settings, cells_csv, counts_csv
from allseg.core.config import override
from allseg.core.errors import UserError
from allseg.core.files import make_folder, write_text
from allseg.data.images import read_rgb, sort_inputs, write_png
from allseg.data.slides import SLIDE_EXTENSIONS, is_slide
from allseg.infer.engines import load_predictor
from allseg.infer.outputs import MONTAGE_MAX_IMAGES, OutputDirs, montage, write_outputs
from allseg.infer.predict import TILED_PIXELS, predict_cells
from allseg.infer.scale import resampling
from allseg.infer.slides import SlidePlaces, segment_slides
from allseg.model.shipped import trained_model_path


def _read_batches(files, batch_size, max_pixels=TILED_PIXELS):
    """Batches read in order, each of at most batch_size images and max_pixels pixels (a larger
    image alone): ([(path, rgb)], [(path, why)], how many files it covers). Unreadable files are
    reported with their batch, not fatal."""
    images, errors, covered, pixels = [], [], 0, 0
    for path in files:
        try:
            rgb = read_rgb(path)
        except UserError as exc:
            errors.append((path, str(exc)))
            covered += 1
            continue
        size = rgb.shape[0] * rgb.shape[1]
        if images and (len(images) == batch_size or pixels + size > max_pixels):
            yield images, errors, covered
            images, errors, covered, pixels = [], [], 0, 0
        images.append((path, rgb))
        covered += 1
        pixels += size
    if images or errors:
        yield images, errors, covered


OUTPUT_KEYS = ("output_dir", "labels_dir", "overlay_dir", "montage", "cell_counts", "cells_csv",
               "geojson_dir", "nuclei_dir")
# Where each output goes under --output DIR: all of a run's outputs in one folder.
OUTPUT_LAYOUT = ("masks", "labels", "overlays", "montage.png", "cell_counts.csv", "cells.csv",
                 "geojson", "nuclei")


def output_keys(num_classes):
    """The OUTPUT_KEYS a model with this many classes writes: nuclei only with two."""
    return tuple(k for k in OUTPUT_KEYS if k != "nuclei_dir" or num_classes == 2)


def use_command_line(cfg, images=None, output=None, pixel_size_um=None, cell_diameter=None):
    """--images DIR, --output DIR, --pixel-size-um and --cell-diameter in place of the config's
    [infer] values (None: keep them)."""
    c = cfg.infer
    if cell_diameter is not None:
        override(cfg, "infer", "cell_diameter", cell_diameter, "--cell-diameter")
    if pixel_size_um is not None:
        if pixel_size_um == 0:  # the config's "not known"; a flag given as 0 is a slip
            raise UserError("--pixel-size-um 0: allowed: a number in (0.0, 1000.0]; leave the "
                            "flag out when the pixel size is not known")
        override(cfg, "infer", "pixel_size_um", pixel_size_um, "--pixel-size-um")
    c.given_as = getattr(c, "given_as", {})
    if images is not None:
        c.images_dir, c.given_as["images_dir"] = str(images), "--images "
    if output is not None:
        for key, place in zip(OUTPUT_KEYS, OUTPUT_LAYOUT):
            setattr(c, key, str(Path(output) / place))
            c.given_as[key] = f"--output {output}: {key} "
    return cfg


def use_cluster(cfg, scheduler=None, workers=None):
    """--scheduler and --workers in place of [infer] scheduler and slide_workers."""
    if scheduler is not None:
        override(cfg, "infer", "scheduler", scheduler, "--scheduler")
    if workers is not None:
        override(cfg, "infer", "slide_workers", workers, "--workers")
    return cfg


def _key(c, name):
    """How the user named a setting, to go before its value in messages: '--images ' or
    '[infer] images_dir = '."""
    return getattr(c, "given_as", {}).get(name, f"[infer] {name} = ")


def _check_folders(c, keys=OUTPUT_KEYS):
    """Refuses, before any work, a missing images_dir and output places (of ``keys``) that
    cannot be written or lie inside it."""
    images_dir = Path(c.images_dir)
    if not images_dir.is_dir():
        raise UserError(f"{_key(c, 'images_dir')}{images_dir}: folder not found")
    for name in keys:
        _check_writable_place(f"{_key(c, name)}{getattr(c, name)}", Path(getattr(c, name)),
                              name.endswith("_dir"))
    src = images_dir.resolve()
    for name in keys:
        folder = Path(getattr(c, name))
        dst = (folder if name.endswith("_dir") else folder.parent).resolve()
        if dst == src or src in dst.parents:
            where = getattr(c, "given_as", {}).get("images_dir", "images_dir = ")
            raise UserError(f"{_key(c, name)}{folder} is inside {where}{images_dir}: "
                            "outputs would mix with the inputs; choose a place outside it")


def _check_writable_place(setting, path, is_folder):
    """Refuses, before any work, an output whose path runs through a file or names a folder."""
    for parent in [path, *path.parents] if is_folder else path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{setting}: {parent} is a file, not a folder; "
                                "choose another path")
            break
    if not is_folder and path.is_dir():
        raise UserError(f"{setting} is a folder; give a file name")


def describe_left_out(skipped):
    """'left out 3 input(s): 2 not an image file, 1 broken link' for the closing summary."""
    if not skipped:
        return "left out nothing"
    reasons = Counter(why.split(":")[0] for _, why in skipped)
    return (f"left out {len(skipped)} input(s): "
            + ", ".join(f"{n} {why}" for why, n in sorted(reasons.items(),
                                                             key=lambda kv: (-kv[1], kv[0]))))


def _check_classes(masks, m):
    """Refuses a model whose outputs are not the config's classes: a nuclei model run with a
    one-class config would lose its nuclei without a word, and the reverse has none to write."""
    have = masks[0].shape[-1]
    if have != m.num_classes:
        raise UserError(f"the model has {have} output channel(s) but [model] num_classes = "
                        f"{m.num_classes}: use the config the model was trained with (or one "
                        f"with num_classes = {have})")


def infer(cfg, model=None):
    """Writes masks, cell labels, overlays, the cells' GeoJSON (and nuclei masks for a model
    with two classes) and a montage; returns (written, skipped, failed) lists."""
    c, m = cfg.infer, cfg.model
    _check_folders(c, output_keys(m.num_classes))
    dirs = OutputDirs(Path(c.output_dir), Path(c.overlay_dir), Path(c.labels_dir),
                      Path(c.geojson_dir), Path(c.nuclei_dir) if m.num_classes == 2 else None)
    files, skipped = _sorted_inputs(Path(c.images_dir))
    slides = [path for path in files if is_slide(path)]
    files = [path for path in files if path not in slides]
    if files:
        model = model or load_predictor(cfg)
    blast_call = model_blast_call(cfg)
    _make_output_folders(c, dirs)
    run = _Run(cfg, model, dirs, 1.0, None, blast_call)
    if files:
        progress = Progbar(len(files), unit_name="image")
        scale, why = resampling(cfg, model, files)
        if why:
            print(why)
        run = _predict_and_write(cfg, model, files, dirs, scale, progress, blast_call)
    if slides:
        run.add_slides(*segment_slides(cfg, slides, SlidePlaces(
            dirs.labels, dirs.geojson, dirs.overlays, Path(c.cells_csv))))
    _write_summaries(c, run, nuclei=m.num_classes == 2, blast_call=blast_call)
    return run.written, skipped, run.failed


def model_blast_call(cfg, log=print):
    """The blast call beside the model cfg runs (<model>.blasts.json), or None."""
    path = blast_call_path(trained_model_path(cfg))
    if not path.is_file():
        return None
    call = read_blast_call(path)
    log(f"Blast call: {path} (each cell called a blast at p >= {call.threshold:g}; "
        "a research aid, not a diagnosis)")
    return call


def _sorted_inputs(images_dir):
    """sort_inputs(images_dir), with a note for each entry left out."""
    files, skipped = sort_inputs(images_dir, also=SLIDE_EXTENSIONS)
    for path, reason in skipped:
        print(f"note: skipped {path} ({reason})")
    return files, skipped


def _make_output_folders(c, dirs):
    """Creates the output folders, an error naming the setting of any that cannot be made."""
    for name, folder in zip(("output_dir", "overlay_dir", "labels_dir", "geojson_dir",
                             "nuclei_dir"), dirs):
        if folder is not None:
            make_folder(folder, _key(c, name))


class _Run:
    """One run's predictions and the writes they start: each image's outputs are written in a
    worker thread, and what they return is collected in input order, so the montage and counts
    are too."""

    def __init__(self, cfg, model, dirs, scale, pool, blast_call=None):
        self.c, self.m, self.batch_size = cfg.infer, cfg.model, cfg.train.batch_size
        self.model, self.dirs, self.scale, self.pool = model, dirs, scale, pool
        self.blast_call = blast_call
        self.cell_keys = cell_settings(self.c, scale)
        self.writes = deque()  # (path, pixels, future) of the writes not yet collected
        self.written, self.failed, self.counts, self.cells = [], [], [], []
        self.tiles, self.labels = [], []  # the montage's
        self.slides = 0  # count rows of slides, whose cells have CSVs of their own

    def add_slides(self, counts, written, failed):
        """A folder's slides' count rows, label stores and failures, after its images'."""
        self.slides += len(counts)
        self.counts += counts
        self.written += written
        self.failed += failed

    def note_unreadable(self, errors):
        for path, why in errors:
            self.failed.append((path, why))
            print(f"\nerror: {why} (skipped; the other images go on)")

    def predict_batch(self, images):
        """Predicts a batch of (path, rgb) and starts writing each image's outputs."""
        c, m = self.c, self.m
        masks = predict_cells(self.model, [rgb for _, rgb in images], m, self.batch_size,
                              c.tiled, self.scale, show_tiles=True)
        _check_classes(masks, m)
        for (path, rgb), channels in zip(images, masks):
            want_tile = len(self.written) + len(self.writes) < MONTAGE_MAX_IMAGES
            # Each channel contiguous for the PNG encoder; the whole cells first
            mask = np.ascontiguousarray(channels[..., 0])
            nucleus = np.ascontiguousarray(channels[..., 1]) if m.num_classes == 2 else None
            self.writes.append((path, mask.size, self.pool.submit(
                write_outputs, path, rgb, mask, self.dirs, want_tile, self.cell_keys,
                c.pixel_size_um, nucleus, self.blast_call)))

    def collect(self, bounded=False):
        """Collects the writes started, oldest first: all of them, or (bounded) only until
        those left hold at most two batches and TILED_PIXELS pixels, which bounds the images
        held in memory to a few batches of small ones, or one scan."""
        while self.writes and (not bounded or len(self.writes) > 2 * self.batch_size
                               or sum(pixels for _, pixels, _ in self.writes) > TILED_PIXELS):
            self._collect_oldest()

    def _collect_oldest(self):
        image, _, job = self.writes.popleft()
        try:
            path, mask_path, row, cell_rows, tile = job.result()
        except UserError as exc:  # a full disk, say: the images written so far are whole
            raise UserError(f"stopped at {image.name} after {len(self.written)} image(s) were "
                            f"written in full: {exc}") from None
        self.written.append(mask_path)
        self.counts.append(row)
        self.cells.extend(cell_rows)
        if tile is not None:
            self.tiles.append(tile)
            self.labels.append(f"{path.stem}: {row['cells']} cells")


def _predict_and_write(cfg, model, files, dirs, scale, progress, blast_call=None):
    """Predicts and writes the files' outputs, a batch at a time; returns the _Run that
    collected what was written. The engine predicts a batch while the next one is read in one
    thread and the images before it are labelled, measured and written in two more (53.5 img/s
    against 49 with one, on 788 images). Worker processes in their place bought nothing on 2
    cores, where the engine already keeps both busy (docs/performance.md, "Inference, stage by
    stage")."""
    batches = _read_batches(files, cfg.train.batch_size)
    with ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=2) as pool:
        run = _Run(cfg, model, dirs, scale, pool, blast_call)
        reading = reader.submit(next, batches, None)
        while (batch := reading.result()) is not None:
            images, errors, covered = batch
            reading = reader.submit(next, batches, None)
            run.note_unreadable(errors)
            if images:
                run.predict_batch(images)
            run.collect(bounded=True)
            progress.add(covered)
        run.collect()
    return run


def _write_summaries(c, run, nuclei, blast_call=None):
    """The cell-count and cells CSVs and the montage, for the images written; with blast calls,
    the folder's blast count (and a warning if its cells' size is not the call's)."""
    blasts = blast_call is not None
    if run.counts:
        make_folder(Path(c.cell_counts).parent, _key(c, "cell_counts"))
        write_text(c.cell_counts, counts_csv(run.counts, blasts))
    if len(run.counts) > run.slides:
        make_folder(Path(c.cells_csv).parent, _key(c, "cells_csv"))
        write_text(c.cells_csv, cells_csv(run.cells, physical=c.pixel_size_um > 0, nuclei=nuclei,
                                          blasts=blasts))
    if blasts:
        called = sum(row.get("blasts", 0) for row in run.counts)
        cells = sum(row["cells"] for row in run.counts)
        print(f"Blasts: {called} of {cells} cells ({100 * called / max(cells, 1):.1f}%) in "
              f"{len(run.counts)} image(s); per image in {c.cell_counts}")
        warning = magnification_warning(
            blast_call, [row["equivalent_diameter_px"] for row in run.cells])
        if warning:
            print(warning)
    if run.tiles:
        make_folder(Path(c.montage).parent, _key(c, "montage"))
        write_png(c.montage, montage(run.tiles, run.labels))
