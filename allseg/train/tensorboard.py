"""TensorBoard logs: Keras's scalars, plus a few validation predictions drawn every epoch."""
import errno
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from allseg.core.files import explain

TENSORBOARD_DIR = "tensorboard"


class ValidationImages(keras.callbacks.Callback):
    """After each epoch, writes image | truth | prediction for a few fixed validation pairs."""

    def __init__(self, log_dir, images, masks):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(Path(log_dir) / "validation_images"))
        self.images, self.masks = images, masks

    def on_epoch_end(self, epoch, logs=None):
        prob = self.model.predict_on_batch(self.images.astype(np.float32))
        # one gray level per pixel: whole cell white; with nuclei, cytoplasm mid-gray as in a
        # three-level mask (the mean of the cell and nucleus channels)
        gray = lambda m: np.repeat(m.mean(axis=-1, keepdims=True), 3, axis=-1) * 255.0  # noqa: E731
        rows = np.concatenate([self.images, gray(self.masks), gray(prob)], axis=2) / 255.0
        with self.writer.as_default():
            tf.summary.image("image | truth | prediction", rows, step=epoch + 1,
                             max_outputs=len(rows))
        self.writer.flush()


# TensorFlow reports a failed write as an OpError whose message carries the system's words.
_WRITE_FAILURES = {
    "No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
    "Permission denied": errno.EACCES, "Read-only file system": errno.EROFS,
    "Not a directory": errno.ENOTDIR,
}


def as_write_error(exc, log_dir):
    """The one-line WriteError for TensorFlow failing to write the logs under log_dir, or exc
    itself for an error that is not a file system's. A full disk stops the run rather than
    losing the logs silently: the next best model would not fit either."""
    for words, number in _WRITE_FAILURES.items():
        if words in str(exc):
            return explain(OSError(number, words), log_dir, "write the TensorBoard logs under")
    return exc


def tensorboard_callbacks(eval_dir, val_ds, count=3, images=True):
    """Keras's TensorBoard scalars and (with images) ValidationImages for the first `count`
    validation pairs. A cluster's chief gets no images: predicting on it alone would leave
    the other workers waiting in a collective operation."""
    log_dir = Path(eval_dir) / TENSORBOARD_DIR
    callbacks = [keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False)]
    if images:
        pairs, masks = next(iter(val_ds.unbatch().batch(count)))
        callbacks.append(ValidationImages(log_dir, pairs.numpy(), masks.numpy()))
    return callbacks
