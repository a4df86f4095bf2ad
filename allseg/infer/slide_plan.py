"""Where a slide is read: the pyramid level that suits the model, the tissue on the glass, and
the windows that cover it.

Windows are squares of the level read ([infer] slide_window px: their cores) that tile it
exactly; each is read with a margin around it, so a cell that a core's edge cuts is still seen whole. A cell
belongs to the window whose core holds its centre: every cell is counted once, whole, and the
windows need nothing from one another.
"""
import math
from typing import NamedTuple

import cv2
import numpy as np

from allseg.data.slides import downsample

MARGIN_CELLS = 3       # the margin, in the model's learned cell diameters
MIN_MARGIN = 96        # px at the model's scale: a tile's worth of context beyond a cut cell
TISSUE_DENSITY = 0.15  # summed optical density of R, G, B above which a pixel is not glass
TISSUE_BLUR = 5        # px of the thumbnail: dust and noise are not tissue


class Window(NamedTuple):
    """One window of the level read: its core [top, top + height) x [left, left + width) and
    the box read around it (the core and a margin, within the level)."""
    index: int
    top: int
    left: int
    height: int
    width: int
    read_top: int
    read_left: int
    read_height: int
    read_width: int

    def holds(self, row, col):
        """Whether a point of the read box (row, col from its corner) lies in the core."""
        row, col = row + self.read_top - self.top, col + self.read_left - self.left
        return 0 <= row < self.height and 0 <= col < self.width


def choose_level(slide, scale0, exact=False, tolerance=1.5):
    """(level, scale at that level): the level whose pixels come nearest the model's after
    resampling by scale0 (the factor that gives level-0 cells the learned size), the finer one
    on a tie. The remaining scale is 1 within tolerance of it unless exact (a cell size the
    user gave, applied as given)."""
    def distance(level):
        return abs(math.log(scale0 * downsample(slide, level)))
    level = min(range(len(slide.shapes)), key=lambda k: (round(distance(k), 6), k))
    scale = scale0 * downsample(slide, level)
    if not exact and 1 / tolerance <= scale <= tolerance:
        scale = 1.0
    return level, scale


def margin_px(learned_diameter, scale):
    """The margin read around each core, in pixels of the level read."""
    at_model = max(MIN_MARGIN, MARGIN_CELLS * learned_diameter)
    return math.ceil(at_model / scale)


def tissue_mask(thumb):
    """Boolean mask of the thumbnail's pixels that are not bare glass: summed optical density
    above TISSUE_DENSITY after a small blur, so a stained smear is all tissue and the glass
    around it is passed over."""
    density = -np.log10((thumb.astype(np.float32) + 1) / 256).sum(axis=2)
    return cv2.blur(density, (TISSUE_BLUR, TISSUE_BLUR)) > TISSUE_DENSITY


def plan_windows(shape, side, margin, tissue=None, thumb_step=1.0):
    """The side x side windows of a level of this (height, width), row by row, with their index in the
    full grid; with a tissue mask (of a thumbnail, thumb_step level pixels a thumbnail pixel),
    only those whose core holds tissue."""
    height, width = shape
    columns = math.ceil(width / side)
    windows = []
    for top in range(0, height, side):
        for left in range(0, width, side):
            h, w = min(side, height - top), min(side, width - left)
            if tissue is not None and not _any_tissue(tissue, thumb_step, top, left, h, w):
                continue
            rt, rl = max(0, top - margin), max(0, left - margin)
            rb, rr = min(height, top + h + margin), min(width, left + w + margin)
            index = (top // side) * columns + left // side
            windows.append(Window(index, top, left, h, w, rt, rl, rb - rt, rr - rl))
    return windows


def _any_tissue(tissue, step, top, left, height, width):
    t, l = int(top / step), int(left / step)
    b, r = max(t + 1, math.ceil((top + height) / step)), max(l + 1, math.ceil((left + width) / step))
    return bool(tissue[t:b, l:r].any())


def neighbours(window, by_index, columns):
    """The windows (of by_index: index -> Window) whose read boxes reach into this one's core,
    itself included, in index order: those of the grid around it, the margin being narrower than
    a core."""
    row, col = divmod(window.index, columns)
    around = [(row + dr) * columns + col + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)
              if 0 <= col + dc < columns]
    return [by_index[i] for i in sorted(around) if i in by_index]
