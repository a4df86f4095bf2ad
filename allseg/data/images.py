"""Reading smear images and ground-truth masks from disk, and writing masks back."""
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from allseg.core.errors import DataError
from allseg.core.files import write_bytes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

# A Segmented image shows the cells in colour on black; JPEG noise on the black stays below this.
MASK_GRAY_THRESHOLD = 30


def is_image_file(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def sort_inputs(folder, also=()):
    """(image files, [(path, "kind: why")] left out) for the entries of ``folder``, by name,
    taking files of the extensions ``also`` too (slides, for inference). Hidden entries
    (dot-files: the litter of editors and file managers) are passed over unnamed."""
    images, left_out = [], []
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink() and not path.exists():
            reason = f"broken link: its target {os.readlink(path)} does not exist"
        elif path.is_dir():
            reason = "folder: sub-folders are not searched"
        elif not path.is_file():
            reason = "not a regular file: a device, pipe or socket"
        elif not is_image_file(path) and path.suffix.lower() not in also:
            reason = f"not an image file: reads {', '.join(IMAGE_EXTENSIONS + tuple(also))}"
        else:
            images.append(path)
            continue
        left_out.append((path, reason))
    return images, left_out


def list_images(folder):
    """Image files directly in ``folder``, sorted by name (hidden files skipped)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and is_image_file(p))


def read_rgb(path) -> np.ndarray:
    """uint8 HxWx3 RGB from any JPEG/PNG/BMP/TIFF: grayscale, alpha and 16-bit included."""
    data = np.fromfile(str(path), dtype=np.uint8)  # np.fromfile copes with non-ASCII paths
    if data.size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    # OpenCV decodes a cut-off JPEG without complaint, filling the missing part with gray; the
    # end-of-image marker cannot occur inside the compressed data, so its absence means truncation.
    if data[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:].tobytes():
        raise DataError(f"{path}: truncated JPEG (the file ends before its end-of-image marker); "
                        "copy or export it again")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV asserts on a header larger than it decodes
        image = None
    if image is None or image.size == 0:
        too_large(path)
        raise DataError(f"{path}: not a readable image (corrupt, truncated or not an image)")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: a scan is 100s of MB


OPENCV_MAX_PIXELS = 2 ** 30  # OpenCV's CV_IO_MAX_IMAGE_PIXELS: it decodes nothing larger


def too_large(path):
    """Raises a DataError saying what to do for an image too large for OpenCV to decode whole
    (its header read by Pillow, which decodes nothing); returns for any other file."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # a header is no bomb
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001  not an image Pillow knows either: the caller says so
        return
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if width * height > OPENCV_MAX_PIXELS:
        raise DataError(f"{path}: {width} x {height} px, more than the {OPENCV_MAX_PIXELS:,} "
                        "px an image is read whole; save it as a tiled, pyramidal TIFF (as "
                        "scanners and QuPath write them), which is read in windows")


def mask_from_segmented(rgb: np.ndarray, threshold: int = MASK_GRAY_THRESHOLD) -> np.ndarray:
    """Boolean HxW: where the segmented image is not black (grayscale above threshold, by
    default the dataset's 30)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) > threshold


def read_mask(path) -> np.ndarray:
    return mask_from_segmented(read_rgb(path))


def resize_image(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    if rgb.shape[:2] == (height, width):
        return rgb
    shrinking = rgb.shape[0] > height or rgb.shape[1] > width
    return cv2.resize(rgb, (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def resize_by(rgb, scale):
    """The image resized by scale (at least 1 px a side); itself at scale 1."""
    height, width = rgb.shape[:2]
    return resize_image(rgb, max(1, round(height * scale)), max(1, round(width * scale)))


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a boolean mask smoothly and threshold it again, so it stays binary."""
    if mask.shape[:2] == (height, width):
        return mask
    return resize_probability(mask.astype(np.float32), height, width) >= 0.5


def resize_probability(prob: np.ndarray, height: int, width: int) -> np.ndarray:
    if prob.shape[:2] == (height, width):
        return prob
    return cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)


def write_png(path, image: np.ndarray):
    """Write an RGB or single-channel (8- or 16-bit) image as PNG, whole or not at all."""
    write_encoded(path, image, ".png")


def write_encoded(path, image: np.ndarray, extension, params=()):
    """Encode an RGB or single-channel image in memory (cv2.imencode) and write it through
    allseg.core.files, which checks every byte reached the disk before the file takes its name."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(extension, image, list(params))
    if not ok:
        raise DataError(f"{path}: could not encode the image as {extension}")
    write_bytes(path, encoded)  # no copy: a scan's PNG is hundreds of MB
