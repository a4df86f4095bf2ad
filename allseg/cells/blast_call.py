"""A per-cell blast call: a logistic regression on cell_features' numbers, kept as plain JSON
beside the segmentation model it goes with (``<model>.blasts.json``), so loading one runs no
code of anyone's. A model without one behaves as if the call did not exist."""
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from allseg.cells.cell_features import FEATURE_NAMES, cell_features
from allseg.core.errors import DataError

SUFFIX = ".blasts.json"
FORMAT = "allseg blast call 1"


@dataclass(frozen=True)
class BlastCall:
    """p(blast) = sigmoid(weights . (features - mean) / scale + bias); blast when p >= threshold.
    about: where it came from (cells, split, held-out scores), written with it."""
    mean: tuple
    scale: tuple
    weights: tuple
    bias: float
    threshold: float = 0.5
    about: dict = field(default_factory=dict)

    def probabilities(self, features):
        """p(blast) for each row of a cell_features table."""
        z = (np.asarray(features, np.float64) - self.mean) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias)))

    def to_json(self):
        return json.dumps({"format": FORMAT, "features": list(FEATURE_NAMES), **asdict(self)},
                          indent=1)


def blast_call_path(model_file):
    """Where the call that goes with a model file lives: beside it, named after it."""
    model_file = Path(model_file)
    return model_file.with_name(model_file.stem + SUFFIX)


def read_blast_call(path):
    """The BlastCall in a .blasts.json file; a DataError naming the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable blast call ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{path}: not a blast call (its \"format\" is not {FORMAT!r})")
    if data.get("features") != list(FEATURE_NAMES):
        raise DataError(f"{path}: made for other cell features than this version computes "
                        f"({len(data.get('features') or [])} against {len(FEATURE_NAMES)}); "
                        "fit it again with TensorflowUNetALLTrainer.py --cells")
    vectors = [data.get(key) for key in ("mean", "scale", "weights")]
    numbers = [data.get("bias"), data.get("threshold")]
    if not all(isinstance(v, list) and len(v) == len(FEATURE_NAMES) for v in vectors) or not all(
            _finite(x) for x in [*numbers, *(x for v in vectors for x in v)]) or not all(
            x > 0 for x in data["scale"]) or not 0 < data["threshold"] < 1:
        raise DataError(f"{path}: a blast call needs {len(FEATURE_NAMES)} finite numbers in "
                        "each of mean, scale (> 0) and weights, a finite bias and a threshold "
                        "between 0 and 1")
    return BlastCall(*(tuple(v) for v in vectors), *numbers, data.get("about") or {})


def _finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def magnification_warning(call, diameters, tolerance=1.5):
    """A warning (or None) when the cells called (their equivalent diameters in pixels) are
    more than tolerance times larger or smaller, at the median, than those the call was
    fitted on: the call reads cell size, which then says more of the microscope than of the
    cell."""
    fitted = call.about.get("median_diameter_px")
    if not fitted or not len(diameters):
        return None
    found = float(np.median(diameters))
    if 1 / tolerance <= found / fitted <= tolerance:
        return None
    return (f"Warning: the blast call was fitted on cells {fitted:.1f} px across (median) and "
            f"these cells are {found:.1f} px: it reads cell size, so it expects images at the "
            "magnification of the cells it was fitted on. Fit it on cells from this microscope "
            "(TensorflowUNetALLTrainer.py --cells), or resample the images to that scale.")


def call_cells(call, rgb, labels, step=1.0):
    """{cell label: p(blast)} for the labelled cells of an image; step: how many of the
    original image's pixels one of these spans (a slide's level read at a downsample), so
    that cells are sized in the original's pixels, as the call was fitted."""
    ids, features = cell_features(rgb, labels)
    features[:, FEATURE_NAMES.index("log_diameter_px")] += math.log(step)
    return dict(zip(ids.tolist(), call.probabilities(features).tolist())) if ids.size else {}
