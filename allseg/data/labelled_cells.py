"""A lab's labelled cells: DIR/blast/ and DIR/normal/ hold images whose central cell carries the
folder's label (a single-cell crop, or a field centred on the cell). A crop the lab already cut
out (the cell on black, as C-NMC's are) gives its cell as it is; the rest are segmented."""
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from allseg.core.errors import DataError, UserError
from allseg.data.images import list_images, read_rgb

CLASS_FOLDERS = {"blast": True, "normal": False}
BLACK = 10           # a channel at most this is black: no glass in a brightfield smear is
CUT_OUT_BORDER = 0.95  # the share of an image's border that is black when the cell was cut out


@dataclass(frozen=True)
class LabelledCell:
    path: Path
    is_blast: bool


def read_labelled_cells(folder):
    """LabelledCells from folder/blast and folder/normal; a UserError, with nothing read, for a
    missing folder or a class with no images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--cells {folder}: no such folder; give one holding blast/ and normal/ "
                        "folders of cell images")
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
