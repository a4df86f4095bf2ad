"""Cell counts from a predicted mask: connected regions of at least a minimum area."""
import csv
import io

import cv2
import numpy as np


def cell_areas(mask, min_area):
    """Areas in pixels of the 8-connected foreground regions with at least min_area pixels,
    largest first (touching cells count as one region)."""
    if not mask.any():
        return []
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return sorted((int(a) for a in areas if a >= min_area), reverse=True)


def count_row(name, mask, min_area):
    areas = cell_areas(mask, min_area)
    return {"file": name, "cells": len(areas), "foreground_fraction": round(float(mask.mean()), 6),
            "cell_areas_px": " ".join(map(str, areas))}


def counts_csv(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, ["file", "cells", "foreground_fraction", "cell_areas_px"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
