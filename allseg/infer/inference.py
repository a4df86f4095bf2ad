"""Predicts a mask for every image in a folder, at each image's own size."""
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import keras
import numpy as np
from scipy import ndimage

from allseg.cells.instances import (
    cell_settings,
    cells_csv,
    count_row,
    counts_csv,
    label_cells,
    measure_cells,
)
from allseg.core.config import override
from allseg.core.errors import DataError, UserError
from allseg.core.files import make_folder, write_text
from allseg.data.images import read_rgb, sort_inputs, write_png
from allseg.infer.engines import load_predictor
from allseg.infer.predict import predict_masks

OVERLAY_COLOUR = (0, 255, 0)  # RGB
MONTAGE_TILE = 160
MONTAGE_MAX_IMAGES = 10


def overlay(rgb, mask, labels=None):
    """The image with the mask tinted green; each cell of ``labels`` outlined in yellow and
    numbered at its centre as in the cells CSV (without labels: the mask's outline)."""
    out = rgb.copy()
    out[mask] = (0.6 * out[mask] + 0.4 * np.array(OVERLAY_COLOUR)).astype(np.uint8)
    thickness = max(1, round(max(rgb.shape[:2]) / 300))
    if labels is None:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (255, 255, 0), thickness)
        return out
    scale = max(0.3, max(rgb.shape[:2]) / 700)
    # Each cell within its bounding box: large images hold thousands of cells.
    for cell, (ys, xs) in enumerate(ndimage.find_objects(labels), start=1):
        one = (labels[ys, xs] == cell).astype(np.uint8)
        contours, _ = cv2.findContours(one, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                       offset=(xs.start, ys.start))
        cv2.drawContours(out, contours, -1, (255, 255, 0), thickness)
        rows, cols = np.nonzero(one)
        text, at = str(cell), (xs.start + int(cols.mean()) - 4, ys.start + int(rows.mean()) + 4)
        cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2,
                    cv2.LINE_AA)
        cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                    cv2.LINE_AA)
    return out


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
        cv2.putText(label_bar, text[-18:], (i * tile + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([label_bar, grid], axis=0)


def _read_batch(paths):
    """([(path, rgb)], [(path, why)]) for one batch: unreadable files are reported, not fatal."""
    images, errors = [], []
    for path in paths:
        try:
            images.append((path, read_rgb(path)))
        except UserError as exc:
            errors.append((path, str(exc)))
    return images, errors


def _write_outputs(path, rgb, mask, dirs, want_tile, c):
    """Writes one image's mask, cell labels and overlay; returns (path, mask path, cell-count
    row, per-cell rows, montage column or None)."""
    output_dir, overlay_dir, labels_dir = dirs
    labels = label_cells(mask, *cell_settings(c))
    if labels.max() > np.iinfo(np.uint16).max:
        raise DataError(f"{path}: {labels.max()} cells do not fit a 16-bit label PNG")
    mask_png = (mask * 255).astype(np.uint8)
    shown = overlay(rgb, mask, labels)
    mask_path = output_dir / f"{path.stem}.png"
    write_png(mask_path, mask_png)
    write_png(labels_dir / f"{path.stem}.png", labels.astype(np.uint16))
    write_png(overlay_dir / f"{path.stem}.png", shown)
    cells = [{"file": path.name, **row} for row in measure_cells(labels, rgb, c.pixel_size_um)]
    tile = montage_column(rgb, mask_png, shown) if want_tile else None
    return path, mask_path, count_row(path.name, labels, mask), cells, tile


OUTPUT_KEYS = ("output_dir", "labels_dir", "overlay_dir", "montage", "cell_counts", "cells_csv")
# Where each output goes under --output DIR: all of a run's outputs in one folder.
OUTPUT_LAYOUT = ("masks", "labels", "overlays", "montage.png", "cell_counts.csv", "cells.csv")


def use_command_line(cfg, images=None, output=None, pixel_size_um=None):
    """--images DIR, --output DIR and --pixel-size-um in place of the config's [infer] values
    (None: keep them)."""
    c = cfg.infer
    if pixel_size_um is not None:
        override(cfg, "infer", "pixel_size_um", pixel_size_um, "--pixel-size-um")
    c.given_as = getattr(c, "given_as", {})
    if images is not None:
        c.images_dir, c.given_as["images_dir"] = str(images), "--images "
    if output is not None:
        for key, place in zip(OUTPUT_KEYS, OUTPUT_LAYOUT):
            setattr(c, key, str(Path(output) / place))
            c.given_as[key] = f"--output {output}: {key} "
    return cfg


def _key(c, name):
    """How the user named a setting, to go before its value in messages: '--images ' or
    '[infer] images_dir = '."""
    return getattr(c, "given_as", {}).get(name, f"[infer] {name} = ")


def _check_folders(c):
    images_dir = Path(c.images_dir)
    if not images_dir.is_dir():
        raise UserError(f"{_key(c, 'images_dir')}{images_dir}: folder not found")
    for name in OUTPUT_KEYS:
        _check_writable_place(f"{_key(c, name)}{getattr(c, name)}", Path(getattr(c, name)),
                              name.endswith("_dir"))
    src = images_dir.resolve()
    for name in OUTPUT_KEYS:
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


def infer(cfg, model=None):
    """Writes masks, overlays and a montage; returns (written, skipped, failed) lists."""
    c, m = cfg.infer, cfg.model
    _check_folders(c)
    images_dir = Path(c.images_dir)
    dirs = (Path(c.output_dir), Path(c.overlay_dir), Path(c.labels_dir))
    model = model or load_predictor(cfg)
    files, skipped = sort_inputs(images_dir)
    for path, reason in skipped:
        print(f"note: skipped {path} ({reason})")
    for name, folder in zip(("output_dir", "overlay_dir", "labels_dir"), dirs):
        make_folder(folder, _key(c, name))

    # Reading the next batch and writing the last one run in threads while the model predicts
    # (OpenCV and TensorFlow release the GIL), so the cores are not idle during file work.
    batch_size = cfg.train.batch_size
    batches = [files[i:i + batch_size] for i in range(0, len(files), batch_size)]
    written, failed, tiles, labels, counts, cells = [], [], [], [], [], []
    progress = keras.utils.Progbar(len(files), unit_name="image")

    def collect(image, job):
        try:
            path, mask_path, row, cell_rows, tile = job.result()
        except UserError as exc:  # a full disk, say: the images written so far are whole
            raise UserError(f"stopped at {image.name} after {len(written)} image(s) were "
                            f"written in full: {exc}") from None
        written.append(mask_path)
        counts.append(row)
        cells.extend(cell_rows)
        if tile is not None:
            tiles.append(tile)
            labels.append(f"{path.stem}: {row['cells']} cells")

    with ThreadPoolExecutor(max_workers=2) as pool:
        reading = pool.submit(_read_batch, batches[0]) if batches else None
        writes = deque()  # in input order, so the montage and counts are too
        for index in range(len(batches)):
            batch, errors = reading.result()
            if index + 1 < len(batches):
                reading = pool.submit(_read_batch, batches[index + 1])
            for path, why in errors:
                failed.append((path, why))
                print(f"\nerror: {why} (skipped; the other images go on)")
            if batch:
                masks = predict_masks(model, [rgb for _, rgb in batch], m, batch_size, c.tiled)
                for (path, rgb), mask in zip(batch, masks):
                    want_tile = len(written) + len(writes) < MONTAGE_MAX_IMAGES
                    writes.append((path, pool.submit(_write_outputs, path, rgb, mask, dirs,
                                                     want_tile, c)))
            while len(writes) > 2 * batch_size:  # bounds the images held in memory
                collect(*writes.popleft())
            progress.add(len(batches[index]))
        while writes:
            collect(*writes.popleft())

    if counts:
        make_folder(Path(c.cell_counts).parent, _key(c, "cell_counts"))
        write_text(c.cell_counts, counts_csv(counts))
        make_folder(Path(c.cells_csv).parent, _key(c, "cells_csv"))
        write_text(c.cells_csv, cells_csv(cells, physical=c.pixel_size_um > 0))
    if tiles:
        make_folder(Path(c.montage).parent, _key(c, "montage"))
        write_png(c.montage, montage(tiles, labels))
    return written, skipped, failed
