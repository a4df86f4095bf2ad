"""A synthetic whole slide: synthetic smears laid out on glass as a tiled, pyramidal BigTIFF
(JPEG tiles, as scanners write them), with the number of cells made known, so slide reading can
be tested and timed at any size without a scanner's file.

The smears are drawn once (a pool) and laid out at random, each in its own PITCH px square with
a gutter of glass around it, so no cell spans two smears and the count made is exact.
"""
import math

import cv2
import numpy as np
import tifffile

from allseg.data.synthetic import SIZE, make_smear

PITCH = 240            # px a smear takes on the slide: 224 of smear and a glass gutter
GLASS = (242, 242, 248)
TILE = 256             # the TIFF's tile side
PIXEL_SIZE_UM = 0.5    # written in the file's resolution tags


def smear_pool(count, seed=0):
    """(pool of PITCH x PITCH RGB smears on glass, the blast mask of each, PITCH x PITCH)."""
    tiles, masks = [], []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        rgb, _, mask = make_smear(rng, ("Early", "Pre", "Pro")[i % 3])
        tile = np.empty((PITCH, PITCH, 3), np.uint8)
        tile[:] = GLASS
        start = (PITCH - SIZE) // 2
        tile[start:start + SIZE, start:start + SIZE] = rgb
        tiles.append(tile)
        masks.append(np.pad(mask, ((start, PITCH - SIZE - start),) * 2))
    return tiles, masks


def write_synthetic_slide(path, side, pool=64, seed=0, levels=None):
    """Writes a side x side smear slide (side * PITCH px square) with a pyramid of halvings down
    to about 2,000 px (or ``levels`` levels); returns (layout, masks): the slide's smear at
    each place is masks' (the truth of) number layout[row, col]."""
    tiles, masks = smear_pool(pool, seed)
    layout = np.random.default_rng(seed).integers(0, pool, (side, side))
    size = side * PITCH
    if levels is None:
        levels = 1 + max(0, min(4, math.ceil(math.log2(max(1, size / 2048)))))
    resolution = (1e4 / PIXEL_SIZE_UM, 1e4 / PIXEL_SIZE_UM)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for level in range(levels):
            pitch = PITCH >> level
            pooled = [cv2.resize(t, (pitch, pitch), interpolation=cv2.INTER_AREA) for t in tiles]
            extent = side * pitch
            tif.write(_tiles(pooled, layout, pitch, extent), shape=(extent, extent, 3),
                      dtype=np.uint8, tile=(TILE, TILE), photometric="rgb",
                      compression="jpeg", subifds=levels - 1 if level == 0 else None,
                      subfiletype=1 if level else 0,
                      resolution=tuple(r / 2 ** level for r in resolution),
                      resolutionunit="CENTIMETER")
    return layout, masks


def _tiles(pooled, layout, pitch, extent):
    """The level's TILE x TILE tiles, row by row, assembled from the laid-out smears."""
    for top in range(0, extent, TILE):
        for left in range(0, extent, TILE):
            rows = range(top // pitch, min(layout.shape[0], math.ceil((top + TILE) / pitch)))
            cols = range(left // pitch, min(layout.shape[1], math.ceil((left + TILE) / pitch)))
            mosaic = np.concatenate([np.concatenate([pooled[layout[r, c]] for c in cols], axis=1)
                                     for r in rows])
            part = mosaic[top - rows[0] * pitch:, left - cols[0] * pitch:][:TILE, :TILE]
            tile = np.empty((TILE, TILE, 3), np.uint8)
            tile[:] = GLASS
            tile[:part.shape[0], :part.shape[1]] = part
            yield tile
