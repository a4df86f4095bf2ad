"""A lab's labelled cells, in either of two forms:

- DIR/blast/ and DIR/normal/ hold images whose central cell carries the folder's label (a
  single-cell crop, or a field centred on the cell). A crop the lab already cut out (the cell on
  black, as C-NMC's are) gives its cell as it is; the rest are segmented;
- DIR holds images and, beside each, the QuPath GeoJSON of its cells (<name>.geojson), each cell
  classified Blast or Normal in QuPath; unclassified cells are passed over.
"""
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from allseg.core.errors import DataError, UserError
from allseg.data.geojson import cell_features, polygons, read_features, rasterize_polygons
from allseg.data.images import list_images, read_rgb

CLASS_FOLDERS = {"blast": True, "normal": False}
BLACK = 10           # a channel at most this is black: no glass in a brightfield smear is
CUT_OUT_BORDER = 0.95  # the share of an image's border that is black when the cell was cut out


@dataclass(frozen=True)
class LabelledCell:
    """An image and its label; outline: the cell's ((rows, cols), mask) window where the lab
    drew it (QuPath), None where the image is centred on it."""
    path: Path
    is_blast: bool
    outline: tuple | None = None


def read_labelled_cells(folder):
    """LabelledCells from folder/blast and folder/normal, or from the classified cells of the
    QuPath GeoJSON beside folder's images; a UserError, with nothing read, for a missing folder
    or a class with no images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--cells {folder}: no such folder; give one holding blast/ and normal/ "
                        "folders of cell images")
    if not any((folder / name).is_dir() for name in CLASS_FOLDERS) and any(
            folder.glob("*.geojson")):
        return qupath_cells(folder)
    cells, problems = [], []
    for name, is_blast in CLASS_FOLDERS.items():
        sub = folder / name
        images = list_images(sub) if sub.is_dir() else []
        if not images:
            problems.append(f"{sub} {'holds no images' if sub.is_dir() else 'is missing'}")
        cells += [LabelledCell(path, is_blast) for path in images]
    if problems:
        raise UserError(f"--cells {folder}: {'; '.join(problems)}: the call learns from both "
                        "blasts and normal cells, at least a few of each (10 help)")
    return cells


def qupath_cells(folder):
    """LabelledCells of the cells classified Blast or Normal in the GeoJSON beside each image."""
    cells = []
    for image in list_images(folder):
        if image.with_suffix(".geojson").is_file():
            height, width = read_rgb(image).shape[:2]
            cells += classified_cells(image, image.with_suffix(".geojson"), height, width)
    if not {c.is_blast for c in cells} == {True, False}:
        raise UserError(f"--cells {folder}: its GeoJSON cells classified Blast number "
                        f"{sum(c.is_blast for c in cells)} and Normal "
                        f"{sum(not c.is_blast for c in cells)}: the call learns from both")
    return cells


def classified_cells(image, path, height, width):
    """The LabelledCells a QuPath GeoJSON file classifies on its height x width image; a
    DataError naming the file for a class other than Blast or Normal."""
    found = []
    for number, feature in cell_features(read_features(path)):
        name = class_name(feature)
        if name is None:
            continue
        if name.lower() not in CLASS_FOLDERS:
            raise DataError(f"{path}: feature {number} is classified {name!r}; the blast call "
                            "learns from cells classified Blast or Normal (others: unclassify "
                            "them, or leave them out of the export)")
        outline = rasterize_polygons(polygons(feature.get("geometry"), path,
                                              f"feature {number}'s geometry"), height, width)
        if outline is not None:
            found.append(LabelledCell(image, CLASS_FOLDERS[name.lower()], outline))
    return found


def class_name(feature):
    """A QuPath object's class name (properties.classification.name; a bare string in some
    exports), or None for an unclassified one."""
    label = (feature.get("properties") or {}).get("classification")
    if isinstance(label, dict):
        label = label.get("name")
    return label if isinstance(label, str) and label else None


def cut_out_cell(rgb):
    """The cell of a crop the lab cut out (nearly all its border black): an int label image, 1 on
    its largest non-black region; None for an ordinary image, which is segmented instead."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    if np.mean(border.max(axis=-1) <= BLACK) < CUT_OUT_BORDER:
        return None
    count, regions, stats, _ = cv2.connectedComponentsWithStats(
        (rgb.max(axis=-1) > BLACK).view(np.uint8), connectivity=8)
    if count < 2:
        return None
    return (regions == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.int32)


def read_cell_image(cell):
    """A labelled cell's RGB image; a DataError naming it if it cannot be read."""
    try:
        return read_rgb(cell.path)
    except DataError as exc:
        raise DataError(f"{exc} (a {'blast' if cell.is_blast else 'normal'} cell)") from None
