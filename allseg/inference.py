"""Predicts a mask for every image in a folder, at each image's own size."""
from pathlib import Path

import cv2
import keras
import numpy as np

from allseg.errors import UserError
from allseg.images import is_image_file, read_rgb, write_png
from allseg.predict import predict_masks
from allseg.unet import load_trained_model

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


def _check_folders(images_dir, output_dir, overlay_dir, montage):
    if not images_dir.is_dir():
        raise UserError(f"[infer] images_dir = {images_dir}: folder not found")
    src = images_dir.resolve()
    outputs = (("output_dir", output_dir), ("overlay_dir", overlay_dir), ("montage", montage.parent))
    for name, folder in outputs:
        dst = folder.resolve()
        if dst == src or src in dst.parents:
            raise UserError(f"[infer] {name} = {folder} is inside images_dir = {images_dir}: "
                            "outputs would mix with the inputs; choose a place outside it")


def infer(cfg, model=None):
    """Writes masks, overlays and a montage; returns (written, skipped, failed) lists."""
    c, m = cfg.infer, cfg.model
    images_dir, output_dir, overlay_dir = Path(c.images_dir), Path(c.output_dir), Path(c.overlay_dir)
    _check_folders(images_dir, output_dir, overlay_dir, Path(c.montage))
    model = model or load_trained_model(cfg)
    files = sorted(p for p in images_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    skipped = [p for p in files if not is_image_file(p)]
    for p in skipped:
        print(f"note: skipped {p} (not an image file)")
    files = [p for p in files if is_image_file(p)]
    output_dir.mkdir(parents=True, exist_ok=True)
    overlay_dir.mkdir(parents=True, exist_ok=True)

    written, failed, tiles, labels = [], [], [], []
    progress = keras.utils.Progbar(len(files), unit_name="image")
    for start in range(0, len(files), cfg.train.batch_size):
        batch = []
        for path in files[start:start + cfg.train.batch_size]:
            try:
                batch.append((path, read_rgb(path)))
            except UserError as exc:
                failed.append((path, str(exc)))
                print(f"\nerror: {exc} (skipped; the other images go on)")
        if batch:
            masks = predict_masks(model, [rgb for _, rgb in batch], m)
            for (path, rgb), mask in zip(batch, masks):
                mask_png = (mask * 255).astype(np.uint8)
                shown = overlay(rgb, mask)
                write_png(output_dir / f"{path.stem}.png", mask_png)
                write_png(overlay_dir / f"{path.stem}.png", shown)
                written.append(output_dir / f"{path.stem}.png")
                if len(tiles) < MONTAGE_MAX_IMAGES:
                    tiles.append(montage_column(rgb, mask_png, shown))
                    labels.append(path.stem)
        progress.add(len(files[start:start + cfg.train.batch_size]))

    if tiles:
        Path(c.montage).parent.mkdir(parents=True, exist_ok=True)
        write_png(c.montage, montage(tiles, labels))
    return written, skipped, failed
