"""Many small patches laid out on one image with a gap around each, so that a neighbourhood
operation (an erosion, a 3x3 convolution, a distance transform, local binary patterns) runs once
for all of an image's cells instead of once a cell, and a sum over each patch is one bincount.
Per cell, the Python and NumPy overhead of a dozen small calls cost more than the arithmetic.
Every neighbourhood operation used here reaches 1 px, the gap's width (co-occurrence pairs, up to
2 px apart, are counted only within one patch), so no patch sees another: each result is what the
operation gives on the patch alone, padded with zeros."""
import numpy as np

GAP = 1  # px of zeros between patches and around the sheet's edge
SHELF_WIDTH = 1024  # px: patches go in rows (shelves) of about this width


def lay_out(shapes, width=SHELF_WIDTH):
    """(top-left corner of each patch, the sheet's shape): shelf by shelf, the tallest patches
    first so that each shelf wastes little height."""
    origins = [(0, 0)] * len(shapes)
    row, col, shelf, sheet_width = GAP, GAP, 0, 2 * GAP
    for i in sorted(range(len(shapes)), key=lambda i: -shapes[i][0]):
        height, patch_width = shapes[i]
        if col > GAP and col + patch_width + GAP > width:
            row, col, shelf = row + shelf + GAP, GAP, 0
        origins[i] = (row, col)
        shelf = max(shelf, height)
        col += patch_width + GAP
        sheet_width = max(sheet_width, col)
    return origins, (row + shelf + GAP, sheet_width)


class Sheet:
    """Where each of a list of patch shapes lies on one sheet, and which patch owns each pixel
    of it (-1 in the gaps)."""

    def __init__(self, shapes):
        self.count = len(shapes)
        self.origins, self.shape = lay_out(shapes)
        self.owner = np.full(self.shape, -1, np.int32)
        for i, ((row, col), (height, width)) in enumerate(zip(self.origins, shapes)):
            self.owner[row:row + height, col:col + width] = i

    def paint(self, patches, dtype):
        """The patches (arrays of the shapes given) on a sheet of zeros."""
        sheet = np.zeros(self.shape, dtype)
        for (row, col), patch in zip(self.origins, patches):
            sheet[row:row + patch.shape[0], col:col + patch.shape[1]] = patch
        return sheet

    def sums(self, values, where):
        """Per patch: the sum of values (a sheet-shaped array) over the pixels where is True."""
        return np.bincount(self.owner[where], weights=values[where], minlength=self.count)

    def pair_counts(self, levels, offsets, bins):
        """Per patch and offset, a bins x bins table of how often level i sits offset (rows,
        cols) from level j, counted both ways round (a symmetric co-occurrence matrix), over
        pairs of pixels that are both in the patch: patches x offsets x bins x bins. levels:
        a sheet of ints below bins, a power of two."""
        if bins & (bins - 1):
            raise ValueError(f"pair_counts needs a power of two of levels, not {bins}")
        height, width = self.shape
        shift = int(bins - 1).bit_length()  # levels in the low bits, the patch above them
        code = np.where(self.owner >= 0, (self.owner << shift) | levels, -1)
        codes = []
        for k, (rows, cols) in enumerate(offsets):
            first, second = code[:height - rows, :width - cols], code[rows:, cols:]
            same = ((first ^ second) >> shift == 0) & (first >= 0)
            first, second = first[same], second[same]
            codes.append((((first >> shift) * len(offsets) + k) * bins + (first & (bins - 1)))
                         * bins + (second & (bins - 1)))
        counts = np.bincount(np.concatenate(codes), minlength=self.count * len(offsets) * bins ** 2)
        counts = counts.reshape(self.count, len(offsets), bins, bins)
        return counts + counts.transpose(0, 1, 3, 2)
