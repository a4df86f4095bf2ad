"""Two settings scored on the same images: is the difference larger than the images' noise?

A lever whose gain is no larger than what swapping a few images in or out would change can
look like a gain on 158 validation images and a loss on the test set. The percentile bootstrap
over images, resampling the same images for both sides, gives the interval a difference must
clear."""
import numpy as np


def paired_interval(rows_a, rows_b, statistic, resamples=2000, seed=0, level=0.95):
    """(difference, low, high): statistic(rows_b) - statistic(rows_a), and the bounds of its
    `level` bootstrap interval. rows_a[i] and rows_b[i] must score the same image."""
    if len(rows_a) != len(rows_b) or not rows_a:
        raise ValueError(f"need the same images on both sides, got {len(rows_a)} and {len(rows_b)}")
    rng = np.random.default_rng(seed)
    n = len(rows_a)
    diffs = []
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        diffs.append(statistic([rows_b[i] for i in pick]) - statistic([rows_a[i] for i in pick]))
    tail = 50 * (1 - level)
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(statistic(rows_b) - statistic(rows_a)), float(low), float(high)
