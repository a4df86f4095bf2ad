"""How much to resample images so that their cells have the size the model learned.

[infer] cell_diameter gives the user's cell size in pixels, or "auto": the size is read from the
images themselves. The model is run on a few of them over a ladder of scales, from small to
large, and the scale at which its cells first reach the size it learned ([model]
cell_diameter_px) is the one it works at. Coming from below matters: an image shown at too large
a scale is cut into cell-sized pieces, which look right but are not (docs/research-notes.md,
"Another lab's magnification").
"""
import numpy as np

from allseg.cells.instances import cell_settings, median_cell_diameter
from allseg.core.errors import UserError
from allseg.data.images import read_rgb, resize_by
from allseg.infer.predict import pixel_groups, predict_tiled_many

LADDER_STEP = 2 ** 0.5    # two rungs an octave: the estimate is interpolated between two
LARGEST_SCALE = 2.0       # cells down to half the learned size are looked for
SMALLEST_SIDE = 32        # px: below it an image holds no cell the model can size
LARGEST_SIDE = 2048       # px: no rung enlarges an image beyond it (a slide scan stays cheap)
SAMPLE_IMAGES = 64        # a folder is one microscope and camera; 16 crops of one cell each
                          # left too few cells: the estimate spread twofold between draws
SAMPLE_PIXELS = 32 * 2 ** 20  # and no more pixels in all than this: a few slide scans suffice
WINDOW_SIDE = 1024        # px: a larger image is sized from windows this wide (sample_windows),
                          # so the ladder still reaches 2x (LARGEST_SIDE) on a slide scan
MIN_CELLS = 3             # a rung with fewer cells (pooled) says nothing about their size
# No resampling while the cells are within this factor of the learned size: resampling itself
# costs Early's validation cell F1 0.006-0.023 (by 0.63 to 1.59), more than the 0.005 the Kaggle
# figures may move, while over that range the model holds within 0.023 of its own figures
# (0f669ad:benchmarks/auto_scale.py --resampled; docs/research-notes.md, "Another lab's magnification").
TOLERANCE = 1.5


def resampling(cfg, model=None, image_paths=()):
    """(factor, note): each image is resized by factor before prediction, so that its cells have
    the size the model learned, and note says how the factor was chosen ("" for as given)."""
    wanted, learned = cfg.infer.cell_diameter, cfg.model.cell_diameter_px
    if not wanted:
        return 1.0, ""
    if not learned:
        if wanted == "auto":
            return 1.0, ("Scale: images as given ([infer] cell_diameter = \"auto\" needs the "
                         "model's learned cell size, [model] cell_diameter_px, which "
                         "export_model.py --inference-copy writes)")
        raise UserError(f"[infer] cell_diameter = {wanted:g} needs the size of cell the model "
                        "learned, [model] cell_diameter_px, which this model's config does not "
                        "give; set cell_diameter = 0 to predict the images as they are")
    if wanted != "auto":
        factor = learned / wanted
        return factor, (f"Resampling each image by {factor:.3g}: [infer] cell_diameter = "
                        f"{wanted:g} px, the model learned cells {learned:g} px across")
    if not image_paths:
        return 1.0, ""
    sample = sample_evenly(image_paths, SAMPLE_IMAGES)
    print(f"Reading the cells' scale from {len(sample)} of {len(image_paths)} images "
          "([infer] cell_diameter = \"auto\") ...", flush=True)
    images = readable(spread_first(sample), SAMPLE_PIXELS)
    found = estimate_scale(model, [window for windows in images for window in windows], cfg)
    where = f"from {len(images)} of {len(image_paths)} images"
    if found is None:
        return 1.0, (f"Scale: auto {where}: no cells the model could size; images as given "
                     "(set [infer] cell_diameter to your cells' size in pixels)")
    diameter = learned / found
    if scale_to_use(found) == 1.0:
        return 1.0, (f"Scale: auto {where}: cells about {diameter:.3g} px across, within "
                     f"{TOLERANCE:g}x of the {learned:g} px the model learned; images as given")
    return found, (f"Scale: auto {where}: cells about {diameter:.3g} px across, the model "
                   f"learned {learned:g} px; resampling each image by {found:.3g}")


def scale_to_use(found):
    """The factor images are resampled by for a scale read from them (None: none read): 1
    where it is within TOLERANCE of the learned size."""
    return 1.0 if found is None or 1 / TOLERANCE <= found <= TOLERANCE else found


def sample_evenly(items, count):
    """At most count items, spread evenly from the first to the last."""
    items = list(items)
    if len(items) <= count:
        return items
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def spread_first(items):
    """The items reordered so that every prefix is spread over the whole list (0, n/2, n/4,
    3n/4, ...: the binary van der Corput sequence), so stopping early still samples it all."""
    bits = max(1, (len(items) - 1).bit_length())
    order = sorted(range(len(items)), key=lambda i: int(f"{i:0{bits}b}"[::-1], 2))
    return [items[i] for i in order]


def readable(paths, max_pixels):
    """The images that can be read, each as its sample_windows, in order, until they hold
    max_pixels (at least one image); the unreadable ones are left to the run, which names them."""
    images, total = [], 0
    for path in paths:
        if images and total >= max_pixels:
            break
        try:
            windows = sample_windows(read_rgb(path))
        except UserError:
            continue
        images.append(windows)
        total += sum(window.shape[0] * window.shape[1] for window in windows)
    return images


def sample_windows(rgb, side=WINDOW_SIDE):
    """The image itself, or for one longer than side, up to four side x side windows centred a
    quarter and three quarters of the way along each axis: a slide scan's cells are sized from
    a few million pixels instead of being predicted whole at every rung of the ladder."""
    def starts(length):
        if length <= side:
            return [0]
        return sorted({min(length - side, max(0, round(length * f - side / 2)))
                       for f in (0.25, 0.75)})
    if max(rgb.shape[:2]) <= side:
        return [rgb]
    return [rgb[y:y + side, x:x + side] for y in starts(rgb.shape[0]) for x in starts(rgb.shape[1])]


def ladder(rgbs, largest=LARGEST_SCALE):
    """The scales tried, smallest first: powers of LADDER_STEP from the one at which the
    smallest image's shorter side is still SMALLEST_SIDE px, up to largest or to the one at
    which the largest image's longer side reaches LARGEST_SIDE px."""
    shortest = min(min(rgb.shape[:2]) for rgb in rgbs)
    longest = max(max(rgb.shape[:2]) for rgb in rgbs)
    largest = min(largest, max(1.0, LARGEST_SIDE / longest))
    low = int(np.ceil(np.log(SMALLEST_SIDE / shortest) / np.log(LADDER_STEP)))
    high = int(np.floor(np.log(largest) / np.log(LADDER_STEP) + 1e-9))
    return [LADDER_STEP ** k for k in range(min(low, high), high + 1)]


def cell_diameter_at(model, rgbs, cfg, scale):
    """The median equivalent diameter (px, at the model's scale) of the cells the model finds in
    these images resized by scale, pooled; 0.0 when it finds fewer than MIN_CELLS."""
    m, masks = cfg.model, []
    for group in pixel_groups(rgbs, scale):
        masks += [prob[..., 0] > m.threshold for prob in predict_tiled_many(
            model, [resize_by(rgbs[i], scale) for i in group], m, cfg.train.batch_size)]
    return median_cell_diameter(masks, *cell_settings(cfg.infer), min_cells=MIN_CELLS)


def estimate_scale(model, rgbs, cfg):
    """The factor that gives these images' cells the learned size, or None when the model finds
    none to size: the first rung of the ladder whose cells reach it, interpolated (in logs)
    with the rung below."""
    if not rgbs:
        return None
    learned = cfg.model.cell_diameter_px
    below = None
    for scale in ladder(rgbs):
        diameter = cell_diameter_at(model, rgbs, cfg, scale)
        if diameter >= learned:
            if below is None or below[1] <= 0:
                return scale
            position = np.log(learned / below[1]) / np.log(diameter / below[1])
            return float(below[0] * (scale / below[0]) ** position)
        below = (scale, diameter)
    return None
