"""Predicts a mask for every image in a folder, at each image's own size."""
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import keras
import numpy as np

from allseg.cells import count_row, counts_csv
from allseg.engines import load_predictor
from allseg.errors import UserError
from allseg.files import write_text
from allseg.images import is_image_file, read_rgb, write_png
from allseg.predict import predict_masks

OVERLAY_COLOUR = (0, 255, 0)  # RGB
MONTAGE_TILE = 160
MONTAGE_MAX_IMAGES = 10


def overlay(rgb, mask):
    """The image with the mask tinted green and outlined in yellow."""
    out = rgb.copy()
    out[mask] = (0.6 * out[mask] + 0.4 * np.array(OVERLAY_COLOUR)).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, round(max(rgb.shape[:2]) / 300))
    cv2.drawContours(out, contours, -1, (255, 255, 0), thickness)
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


def _write_outputs(path, rgb, mask, output_dir, overlay_dir, want_tile, min_area):
    """Writes one image's mask and overlay; returns (path, mask path, cell-count row, montage
    column or None)."""
    mask_png = (mask * 255).astype(np.uint8)
    shown = overlay(rgb, mask)
    mask_path = output_dir / f"{path.stem}.png"
    write_png(mask_path, mask_png)
    write_png(overlay_dir / f"{path.stem}.png", shown)
    row = count_row(path.name, mask, min_area)
    return path, mask_path, row, montage_column(rgb, mask_png, shown) if want_tile else None


def _check_folders(images_dir, output_dir, overlay_dir, montage, cell_counts):
    if not images_dir.is_dir():
        raise UserError(f"[infer] images_dir = {images_dir}: folder not found")
    src = images_dir.resolve()
    outputs = (("output_dir", output_dir), ("overlay_dir", overlay_dir), ("montage", montage.parent),
               ("cell_counts", cell_counts.parent))
    for name, folder in outputs:
        dst = folder.resolve()
        if dst == src or src in dst.parents:
            raise UserError(f"[infer] {name} = {folder} is inside images_dir = {images_dir}: "
                            "outputs would mix with the inputs; choose a place outside it")


def infer(cfg, model=None):
    """Writes masks, overlays and a montage; returns (written, skipped, failed) lists."""
    c, m = cfg.infer, cfg.model
    images_dir, output_dir, overlay_dir = Path(c.images_dir), Path(c.output_dir), Path(c.overlay_dir)
    _check_folders(images_dir, output_dir, overlay_dir, Path(c.montage), Path(c.cell_counts))
    model = model or load_predictor(cfg)
    files = sorted(p for p in images_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    skipped = [p for p in files if not is_image_file(p)]
    for p in skipped:
        print(f"note: skipped {p} (not an image file)")
    files = [p for p in files if is_image_file(p)]
    output_dir.mkdir(parents=True, exist_ok=True)
    overlay_dir.mkdir(parents=True, exist_ok=True)

    # Reading the next batch and writing the last one run in threads while the model predicts
    # (OpenCV and TensorFlow release the GIL), so the cores are not idle during file work.
    batch_size = cfg.train.batch_size
    batches = [files[i:i + batch_size] for i in range(0, len(files), batch_size)]
    written, failed, tiles, labels, counts = [], [], [], [], []
    progress = keras.utils.Progbar(len(files), unit_name="image")
    def collect(job):
        path, mask_path, row, tile = job.result()
        written.append(mask_path)
        counts.append(row)
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
                    writes.append(pool.submit(_write_outputs, path, rgb, mask, output_dir,
                                              overlay_dir, want_tile, c.cell_min_area))
            while len(writes) > 2 * batch_size:  # bounds the images held in memory
                collect(writes.popleft())
            progress.add(len(batches[index]))
        while writes:
            collect(writes.popleft())

    if counts:
        Path(c.cell_counts).parent.mkdir(parents=True, exist_ok=True)
        write_text(c.cell_counts, counts_csv(counts))
    if tiles:
        Path(c.montage).parent.mkdir(parents=True, exist_ok=True)
        write_png(c.montage, montage(tiles, labels))
    return written, skipped, failed
