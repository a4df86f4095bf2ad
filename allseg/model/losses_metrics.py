"""Loss and metrics as small Keras objects, registered so saved models reload by name alone.

Training metrics pool true/false positives over the whole epoch at threshold 0.5: an empty image
adds nothing instead of scoring a perfect 1, so the figure cannot look good by predicting nothing.
"""
import keras
from keras import ops

PACKAGE = "allseg"


@keras.saving.register_keras_serializable(package=PACKAGE)
class BceDice(keras.losses.Loss):
    """Binary cross-entropy plus soft Dice loss: Dice pooled over the batch, or (per_image=True)
    the mean of each image's soft Dice, which weighs every image alike, as the mean per-image Dice
    score does; an image whose truth and prediction are both empty then scores 1, not 0."""

    def __init__(self, dice_weight=1.0, per_image=False, name="bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = dice_weight
        self.per_image = per_image

    def call(self, y_true, y_pred):
        """A loss per pixel: its cross-entropy plus the (batch's or image's) Dice loss. Keras
        averages it, which gives mean cross-entropy + Dice loss; per-pixel sample weights (the
        border weight map) then weigh each pixel's cross-entropy, as in the U-Net paper."""
        y_true = ops.cast(y_true, y_pred.dtype)
        bce = keras.losses.binary_crossentropy(y_true, y_pred)  # (batch, height, width)
        if not self.per_image:
            return bce + self.dice_weight * keras.losses.dice(y_true, y_pred)
        axes = tuple(range(1, len(y_pred.shape)))
        overlap = ops.sum(y_true * y_pred, axis=axes)
        total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
        soft_dice = (2.0 * overlap + 1.0) / (total + 1.0)  # +1: empty and empty is a match
        return bce + self.dice_weight * (1.0 - soft_dice)[:, None, None]

    def get_config(self):
        return {**super().get_config(), "dice_weight": self.dice_weight, "per_image": self.per_image}


def make_loss(name):
    return {"bce": lambda: keras.losses.BinaryCrossentropy(name="bce"),
            "bce_dice": BceDice,
            "bce_dice_per_image": lambda: BceDice(per_image=True, name="bce_dice_per_image")}[name]()


class _PooledOverlap(keras.metrics.Metric):
    """Accumulates TP, FP and FN of thresholded predictions; subclasses turn them into a score."""

    def __init__(self, threshold=0.5, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.threshold = threshold
        self.tp = self.add_variable(shape=(), initializer="zeros", name="tp")
        self.fp = self.add_variable(shape=(), initializer="zeros", name="fp")
        self.fn = self.add_variable(shape=(), initializer="zeros", name="fn")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.cast(y_true > 0.5, "float32")
        pred = ops.cast(y_pred > self.threshold, "float32")
        self.tp.assign_add(ops.sum(truth * pred))
        self.fp.assign_add(ops.sum((1.0 - truth) * pred))
        self.fn.assign_add(ops.sum(truth * (1.0 - pred)))

    def reset_state(self):
        for v in (self.tp, self.fp, self.fn):
            v.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Dice(_PooledOverlap):
    def __init__(self, threshold=0.5, name="dice", dtype=None):
        super().__init__(threshold, name, dtype)

    def result(self):
        denom = 2.0 * self.tp + self.fp + self.fn
        return ops.where(denom > 0, 2.0 * self.tp / ops.maximum(denom, 1.0), 1.0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class IoU(_PooledOverlap):
    def __init__(self, threshold=0.5, name="iou", dtype=None):
        super().__init__(threshold, name, dtype)

    def result(self):
        denom = self.tp + self.fp + self.fn
        return ops.where(denom > 0, self.tp / ops.maximum(denom, 1.0), 1.0)


def make_metrics():
    return [keras.metrics.BinaryAccuracy(name="binary_accuracy"), Dice(), IoU()]
