"""Whole-slide files, read a window at a time and never whole.

One reader per kind of file, in a registry: tifffile for TIFF, OME-TIFF and BigTIFF pyramids
(tiles read through zarr), OpenSlide for the scanner formats (SVS, NDPI, MRXS, ...). Each gives
the pyramid's levels, the pixel size its metadata records, and windows of a level as RGB uint8.
A plain TIFF (not tiled, one level) stays an ordinary image that OpenCV reads whole.
"""
import math
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import openslide
import tifffile
import zarr

from allseg.core.errors import DataError

# The scanners' own formats: OpenSlide reads them (a TIFF goes to tifffile first).
OPENSLIDE_EXTENSIONS = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")
TIFF_EXTENSIONS = (".tif", ".tiff", ".btf", ".tf8")
SLIDE_EXTENSIONS = OPENSLIDE_EXTENSIONS + (".btf", ".tf8")  # beyond images.IMAGE_EXTENSIONS
TILED_SLIDE_PIXELS = 2 ** 26  # 67 MP: a tiled TIFF larger than this, with no pyramid, is a slide
# A pixel size outside this (micrometres) is a placeholder (72 dpi is 353 um), not a microscope's
PLAUSIBLE_PIXEL_UM = (0.02, 20.0)
UNIT_UM = {2: 25400.0, 3: 10000.0}  # TIFF ResolutionUnit: inch, centimetre, in micrometres
OME_UNIT_UM = {"nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4}


def is_slide(path) -> bool:
    """Whether ``path`` is read as a slide: a scanner's format, a BigTIFF, or a TIFF that holds a
    pyramid or is tiled and over TILED_SLIDE_PIXELS (the layouts made to be read in windows); a
    small tiled TIFF from a microscope's camera stays an image, with an image's outputs."""
    suffix = Path(path).suffix.lower()
    if suffix in OPENSLIDE_EXTENSIONS or suffix in (".btf", ".tf8"):
        return True
    if suffix not in TIFF_EXTENSIONS:
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            pixels = math.prod(series.shape[:2])
            return len(series.levels) > 1 or (tif.pages[0].is_tiled
                                              and pixels > TILED_SLIDE_PIXELS)
    except Exception:  # noqa: BLE001  an unreadable TIFF is left to OpenCV, which names it
        return False


def plausible(pixel_um):
    """pixel_um if it can be a microscope's pixel size, else None."""
    low, high = PLAUSIBLE_PIXEL_UM
    return pixel_um if pixel_um and low <= pixel_um <= high else None


class TiffSlide:
    """A TIFF pyramid read with tifffile: each level a zarr array over its tiles."""
    reader = "tifffile"

    def __init__(self, path):
        self.path = Path(path)
        self._tif = tifffile.TiffFile(path)
        series = self._tif.series[0]
        if series.axes not in ("YXS", "YX"):
            raise DataError(f"{path}: a TIFF of axes {series.axes}; slides are read as one RGB "
                            "or grey image (axes YXS or YX)")
        self._levels = [zarr.open(series.aszarr(level=k), mode="r")
                        for k in range(len(series.levels))]
        self.shapes = [tuple(level.shape[:2]) for level in self._levels]
        self.pixel_size_um = self._pixel_size()

    def _pixel_size(self):
        if self._tif.is_ome:
            for node in ET.fromstring(self._tif.ome_metadata).iter():
                if node.tag.endswith("Pixels") and "PhysicalSizeX" in node.attrib:
                    unit = OME_UNIT_UM.get(node.attrib.get("PhysicalSizeXUnit", "µm"))
                    return plausible(float(node.attrib["PhysicalSizeX"]) * (unit or 0))
        page = self._tif.pages[0]
        resolution, unit = page.tags.get("XResolution"), page.tags.get("ResolutionUnit")
        if resolution is None or unit is None or int(unit.value) not in UNIT_UM:
            return None
        numerator, denominator = resolution.value
        if not numerator:
            return None
        return plausible(UNIT_UM[int(unit.value)] * denominator / numerator)

    def read(self, level, top, left, height, width):
        with unreadable_window(self.path, level, top, left):
            part = np.asarray(self._levels[level][top:top + height, left:left + width])
        return as_rgb(part)

    def close(self):
        self._tif.close()


class OpenSlideSlide:
    """A scanner's file read with OpenSlide."""
    reader = "openslide"

    def __init__(self, path):
        self.path = Path(path)
        self._slide = openslide.OpenSlide(path)
        self.shapes = [(h, w) for w, h in self._slide.level_dimensions]
        self._downsamples = self._slide.level_downsamples
        mpp = self._slide.properties.get(openslide.PROPERTY_NAME_MPP_X)
        self.pixel_size_um = plausible(float(mpp)) if mpp else None

    def read(self, level, top, left, height, width):
        scale = self._downsamples[level]  # OpenSlide places a window in level-0 pixels
        with unreadable_window(self.path, level, top, left):
            rgba = np.asarray(self._slide.read_region((round(left * scale), round(top * scale)),
                                                      level, (width, height)))
        # Outside the scanned area is transparent: glass, shown white
        alpha = rgba[..., 3:].astype(np.float32) / 255
        return (rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)

    def close(self):
        self._slide.close()


@contextmanager
def unreadable_window(path, level, top, left):
    """A reader's error while reading a window as a DataError naming the file and the window."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001  each library has its own errors
        raise DataError(f"{path}: unreadable at level {level}, row {top}, column {left} "
                        f"({type(exc).__name__}: {str(exc).strip()}); a truncated or corrupt "
                        "file") from None


READERS = {"tifffile": TiffSlide, "openslide": OpenSlideSlide}


def readers_for(path):
    """The readers to try for a file, in order."""
    if Path(path).suffix.lower() in OPENSLIDE_EXTENSIONS:
        return ["openslide"]
    return ["tifffile", "openslide"]


def open_slide(path):
    """The first reader of readers_for(path) that opens it; a DataError naming the file and what
    each reader said when none does."""
    said = []
    for name in readers_for(path):
        try:
            return READERS[name](path)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001  each library has its own errors
            said.append(f"{name}: {str(exc).strip() or type(exc).__name__}")
    raise DataError(f"{path}: no slide reader opens it ({'; '.join(said)}); a truncated or "
                    "corrupt file, or a format neither reads")


def as_rgb(part):
    """A window of any layout (grey, RGB, RGBA, 16-bit) as uint8 RGB."""
    if part.dtype == np.uint16:
        part = (part // 257).astype(np.uint8)
    if part.ndim == 2:
        return cv2.cvtColor(part, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(part[..., :3])


def downsample(slide, level):
    """How many level-0 pixels one pixel of ``level`` spans (the pyramid's step)."""
    return slide.shapes[0][1] / slide.shapes[level][1]


def thumbnail(slide, longest=2048, rows=1024):
    """The slide shrunk so its longer side is at most ``longest`` pixels, read from the smallest
    level still that large, a strip of rows at a time (a one-level slide never whole)."""
    level = max((k for k, (h, w) in enumerate(slide.shapes) if max(h, w) >= longest),
                default=0)
    height, width = slide.shapes[level]
    factor = min(1.0, longest / max(height, width))
    out_h, out_w = max(1, round(height * factor)), max(1, round(width * factor))
    step = max(rows, math.ceil(1 / factor))
    strips = []
    for top in range(0, height, step):
        strip = slide.read(level, top, 0, min(step, height - top), width)
        strip_rows = max(1, round((top + strip.shape[0]) * factor) - round(top * factor))
        strips.append(cv2.resize(strip, (out_w, strip_rows), interpolation=cv2.INTER_AREA))
    return np.concatenate(strips)[:out_h], downsample(slide, level) / factor
