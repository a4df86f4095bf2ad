"""The U-Net paper's weight map (Ronneberger et al. 2015, eq. 2), which stresses the thin
background between cells that nearly touch, so the network learns to keep them apart, and its
mirror image, which stresses the thin line of cell where two cells touch, so the network learns
to keep those joined.

w(x) = 1 + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2)) on background pixels, with d1 and d2 the
distances to the nearest and the second-nearest cell; on cell pixels
w(x) = 1 + c0 * exp(-dc(x)^2 / (2 sigma^2)), with dc the distance to the line along which the
cell split (allseg/cells/instances.py) divides touching cells. The paper also balances the classes in w_c;
here the Dice term of the loss does that, so w_c = 1.
"""
import numpy as np
from scipy import ndimage

from allseg.cells.instances import SPLIT_HOLE_PX, label_cells


def border_weights(mask, w0, sigma, min_area, contact_w0=0.0, split_depth=0.0,
                   split_hole_px=SPLIT_HOLE_PX):
    """float32 HxW weights for a boolean HxW mask: the gap term needs two cells or more, the
    contact term (contact_w0 > 0) touching cells that the split at split_depth divides."""
    labels = label_cells(mask, min_area)
    weights = np.ones(mask.shape, np.float32)
    count = int(labels.max())
    if w0 > 0 and count >= 2:
        # Distance to each cell; the two smallest per pixel are d1 and d2.
        distances = np.stack([ndimage.distance_transform_edt(labels != k)
                              for k in range(1, count + 1)])
        d1, d2 = np.partition(distances, 1, axis=0)[:2]
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma ** 2))
        background = labels == 0
        weights[background] += border[background].astype(np.float32)
    if contact_w0 > 0 and count:
        contact = contact_lines(label_cells(mask, min_area, split_depth, split_hole_px))
        if contact.any():
            near = ndimage.distance_transform_edt(~contact)
            cells = labels > 0
            weights[cells] += (contact_w0 * np.exp(-near[cells] ** 2 / (2 * sigma ** 2))
                               ).astype(np.float32)
    return weights


def contact_lines(cells):
    """Boolean mask of the cell pixels that have a pixel of another cell among their eight
    neighbours: where touching cells meet."""
    others = np.where(cells > 0, cells, np.iinfo(cells.dtype).max)
    lowest = ndimage.minimum_filter(others, size=3, mode="nearest")
    highest = ndimage.maximum_filter(cells, size=3, mode="nearest")
    return (cells > 0) & (lowest != highest)
