"""Synthetic peripheral blood smears in the Kaggle ALL layout, so everything runs without the data.

Each smear has a pale background with uneven light, red blood cells (pink to grey-lavender, as
stains vary) with pale centres, small dark platelets, and violet lymphoblasts (textured nucleus,
thin pale cytoplasm) whose size and number depend on
the category; stain, light, blur, noise and JPEG compression vary per image. The matching
Segmented image shows the blasts in colour on black, as the real dataset does.
"""
from pathlib import Path

import cv2
import numpy as np

from allseg.data.images import write_encoded

SIZE = 224
CATEGORIES = ("Benign", "Early", "Pre", "Pro")

# (min, max) blasts per image and blast radius in pixels at 224x224, loosely following the real
# classes: benign hematogones are small and few; pro-B blasts are the largest and most numerous.
BLAST_STYLE = {
    "Benign": {"count": (2, 5), "radius": (7, 10)},
    "Early": {"count": (3, 8), "radius": (9, 12)},
    "Pre": {"count": (4, 9), "radius": (9, 13)},
    "Pro": {"count": (4, 10), "radius": (10, 14)},
}


def _smooth_noise(rng, shape, cells=6):
    """Low-frequency noise in [-1, 1]: random values on a coarse grid, smoothly upscaled."""
    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


def _disc_alpha(dist, radius):
    """Anti-aliased coverage of a disc: 1 inside, 0 outside, a one-pixel ramp at the edge."""
    return np.clip(radius - dist + 0.5, 0.0, 1.0)


def _patch(cx, cy, reach, size):
    x0, x1 = max(0, int(cx - reach)), min(size, int(cx + reach) + 2)
    y0, y1 = max(0, int(cy - reach)), min(size, int(cy + reach) + 2)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    return (slice(y0, y1), slice(x0, x1)), xx - cx, yy - cy


def _paint(canvas, where, colour, alpha):
    region = canvas[where]
    canvas[where] = region + (np.asarray(colour, np.float32) - region) * alpha[..., None]


def _red_cell(canvas, rng, cx, cy, colour):
    radius = rng.uniform(9, 13)
    squash = rng.uniform(0.85, 1.0)  # slightly oval
    angle = rng.uniform(0, np.pi)
    where, dx, dy = _patch(cx, cy, radius + 2, canvas.shape[0])
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / squash
    dist = np.hypot(u, v)
    r = dist / radius
    # Biconcave disc: dense rim, pale centre.
    density = 0.45 + 0.5 * np.clip((r - 0.25) / 0.6, 0, 1) ** 1.5
    _paint(canvas, where, colour, _disc_alpha(dist, radius) * density)


def _blast(canvas, mask, rng, cx, cy, radius, nucleus_colour, cytoplasm_colour):
    where, dx, dy = _patch(cx, cy, radius * 1.25 + 2, canvas.shape[0])
    theta = np.arctan2(dy, dx)
    dist = np.hypot(dx, dy)
    # Irregular outline: a few low-order harmonics on the radius.
    wobble = sum(rng.uniform(0, 0.06) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
                 for k in (2, 3, 5))
    body = _disc_alpha(dist, radius * (1 + wobble))
    _paint(canvas, where, cytoplasm_colour, body)

    # Nucleus fills most of the cell, a little off centre, with chromatin texture and nucleoli.
    ncx, ncy = rng.uniform(-0.12, 0.12, 2) * radius
    n_radius = radius * rng.uniform(0.8, 0.92)
    n_dist = np.hypot(dx - ncx, dy - ncy)
    nucleus = _disc_alpha(n_dist, n_radius * (1 + 0.7 * wobble))
    texture = 1 + 0.16 * _smooth_noise(rng, dist.shape, cells=max(3, int(radius / 2.5)))
    texture += 0.06 * rng.standard_normal(dist.shape).astype(np.float32)
    shade = np.asarray(nucleus_colour, np.float32) * texture[..., None]
    region = canvas[where]
    canvas[where] = region + (shade - region) * nucleus[..., None]
    for _ in range(rng.integers(0, 3)):
        ox, oy = rng.uniform(-0.4, 0.4, 2) * n_radius
        spot = _disc_alpha(np.hypot(dx - ncx - ox, dy - ncy - oy), rng.uniform(1.2, 2.5)) * nucleus
        _paint(canvas, where, np.asarray(nucleus_colour) * 1.35, spot * 0.5)
    mask[where] |= body > 0.5


def make_smear(rng, category, size=SIZE):
    """(original RGB uint8, segmented RGB uint8, blast mask bool) for one synthetic smear."""
    style = BLAST_STYLE[category]
    stain = rng.uniform(0.92, 1.08, 3)  # per-channel stain strength
    light = rng.uniform(0.92, 1.05)
    background = np.array([238, 238, 248], np.float32) * rng.uniform(0.97, 1.02, 3)
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = background
    # Uneven illumination across the field.
    canvas *= (1 + 0.05 * _smooth_noise(rng, (size, size), cells=3))[..., None]

    mask = np.zeros((size, size), bool)
    centres = []
    for _ in range(rng.integers(*style["count"], endpoint=True)):
        radius = rng.uniform(*style["radius"])
        for _attempt in range(20):
            cx, cy = rng.uniform(radius * 0.6, size - radius * 0.6, 2)
            if all(np.hypot(cx - x, cy - y) > radius + r for x, y, r in centres):
                break
        centres.append((cx, cy, radius))

    rbc_colour = np.array([182, 164, 198], np.float32) * stain
    for _ in range(rng.integers(40, 90)):
        cx, cy = rng.uniform(0, size, 2)
        if all(np.hypot(cx - x, cy - y) > r + 4 for x, y, r in centres):
            _red_cell(canvas, rng, cx, cy, rbc_colour * rng.uniform(0.95, 1.05))

    nucleus_colour = np.array([112, 88, 205], np.float32) * stain * rng.uniform(0.85, 1.1)
    cytoplasm_colour = np.array([150, 142, 218], np.float32) * stain
    for cx, cy, radius in centres:
        _blast(canvas, mask, rng, cx, cy, radius, nucleus_colour, cytoplasm_colour)

    for _ in range(rng.integers(0, 6)):  # platelets: small dark dots that are not blasts
        cx, cy = rng.uniform(0, size, 2)
        where, dx, dy = _patch(cx, cy, 4, size)
        _paint(canvas, where, nucleus_colour * 0.8, _disc_alpha(np.hypot(dx, dy), rng.uniform(1, 2.5)))

    canvas *= light
    canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 1.2))
    canvas += rng.normal(0, rng.uniform(1.5, 4.0), canvas.shape).astype(np.float32)
    original = np.clip(canvas, 0, 255).astype(np.uint8)
    segmented = np.where(mask[..., None], original, 0).astype(np.uint8)
    return original, segmented, mask


def _write_jpeg(path, rgb, quality):
    write_encoded(path, rgb, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)])


def write_master(out, per_category=50, seed=0, categories=CATEGORIES, progress=None):
    """Writes ``out/Original/<Category>/*.jpg`` and ``out/Segmented/<Category>/*.jpg``.

    Every image has its own generator seeded from (seed, category, index), so a file does not
    depend on how many others are made."""
    out = Path(out)
    for c_index, category in enumerate(categories):
        original_dir = out / "Original" / category
        segmented_dir = out / "Segmented" / category
        original_dir.mkdir(parents=True, exist_ok=True)
        segmented_dir.mkdir(parents=True, exist_ok=True)
        kind = "Benign" if category == "Benign" else f"Malignant-{category}"
        for i in range(1, per_category + 1):
            rng = np.random.default_rng([seed, CATEGORIES.index(category), i])
            original, segmented, _ = make_smear(rng, category)
            name = f"Synthetic-{kind}-{i:03d}.jpg"
            quality = rng.integers(88, 96)
            _write_jpeg(original_dir / name, original, quality)
            _write_jpeg(segmented_dir / name, segmented, quality)
        if progress:
            progress(category, per_category)
