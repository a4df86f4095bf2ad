"""The U-Net paper's weight map (Ronneberger et al. 2015, eq. 2), which stresses the thin
background between cells that nearly touch, so the network learns to keep them apart.

w(x) = 1 + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2)) on background pixels, 1 on cells, with d1
and d2 the distances to the nearest and the second-nearest cell. The paper also balances the
classes in w_c; here the Dice term of the loss does that, so w_c = 1.
"""
import numpy as np
from scipy import ndimage

from allseg.cells import label_cells


def border_weights(mask, w0, sigma, min_area):
    """float32 HxW weights for a boolean HxW mask; all ones where it has fewer than two cells."""
    labels = label_cells(mask, min_area)
    count = int(labels.max())
    weights = np.ones(mask.shape, np.float32)
    if count < 2:
        return weights
    # Distance to each cell; the two smallest per pixel are d1 and d2.
    distances = np.stack([ndimage.distance_transform_edt(labels != k) for k in range(1, count + 1)])
    d1, d2 = np.partition(distances, 1, axis=0)[:2]
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma ** 2))
    background = labels == 0
    weights[background] += border[background].astype(np.float32)
    return weights
