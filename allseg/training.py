"""Fits the U-Net on the [train] pairs: validation split, early stopping, best model, logs, plots."""
import os
from pathlib import Path

import keras
import tensorflow as tf

from allseg.dataset import ALLDataset, split_pairs
from allseg.files import keep_previous
from allseg.plots import plot_history
from allseg.unet import TensorflowUNet

BEST_MODEL = "best_model.keras"
TRAIN_LOG = "train_log.csv"
LOSS_PLOT = "train_losses.png"
METRIC_PLOT = "train_metrics.png"


class SaveBestModel(keras.callbacks.Callback):
    """Saves the model whenever val_loss improves, to a temp name first so a crash mid-write
    never leaves a truncated best model behind."""

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.best = float("inf")

    def on_epoch_end(self, epoch, logs=None):
        val_loss = (logs or {}).get("val_loss")
        if val_loss is None or not val_loss < self.best:
            return
        self.best = val_loss
        tmp = self.path.with_name(f".{self.path.stem}.tmp.keras")
        self.model.save(tmp)
        os.replace(tmp, self.path)
        print(f"\nEpoch {epoch + 1}: val_loss improved to {val_loss:.5f}; saved {self.path}")


class PlotCurves(keras.callbacks.Callback):
    """Redraws the loss and metric graphs after every epoch, so they exist even if a run dies."""

    def __init__(self, eval_dir):
        super().__init__()
        self.eval_dir = Path(eval_dir)
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        plot_history(self.history, ["loss"], "loss", self.eval_dir / LOSS_PLOT)
        plot_history(self.history, ["binary_accuracy", "dice", "iou"], "metrics",
                     self.eval_dir / METRIC_PLOT)


def describe_device():
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU ({', '.join(g.name for g in gpus)})"
    return f"CPU ({os.cpu_count()} cores; no GPU visible)"


def learning_rate(cfg, steps_per_epoch):
    """A cosine decay over all epochs for lr_schedule = "cosine"; else the constant rate."""
    if cfg.train.lr_schedule != "cosine":
        return None
    return keras.optimizers.schedules.CosineDecay(
        cfg.model.learning_rate, decay_steps=cfg.train.epochs * steps_per_epoch, alpha=0.02)


def train(cfg):
    """Trains as the config says; returns a dict of what was written and how training went."""
    t = cfg.train
    keras.utils.set_random_seed(t.seed)  # Python, NumPy and TensorFlow
    data = ALLDataset.from_config(cfg, "train")
    train_pairs, val_pairs = split_pairs(data.pairs, t.validation_split, t.seed)
    print(f"Data: {len(data)} pairs in {Path(t.image_datapath) / t.category}: "
          f"{len(train_pairs)} train, {len(val_pairs)} validation (seed {t.seed})")
    print(f"Device: {describe_device()}")

    model_dir, eval_dir = Path(t.model_dir), Path(t.eval_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    eval_dir.mkdir(parents=True, exist_ok=True)
    outputs = {"model": model_dir / BEST_MODEL, "log": eval_dir / TRAIN_LOG,
               "loss_plot": eval_dir / LOSS_PLOT, "metric_plot": eval_dir / METRIC_PLOT}
    for path in outputs.values():
        kept = keep_previous(path)
        if kept:
            print(f"Kept the previous {path.name} as {kept}")

    steps_per_epoch = -(-len(train_pairs) // t.batch_size)
    unet = TensorflowUNet(cfg, learning_rate=learning_rate(cfg, steps_per_epoch))
    if cfg.model.show_summary:
        unet.summary()
    train_ds = data.dataset(train_pairs, t.batch_size, shuffle_seed=t.seed, cache=t.cache,
                            flips=t.augment_flips, colour=t.augment_color)
    val_ds = data.dataset(val_pairs, t.batch_size, cache=t.cache)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=t.patience,
                                      restore_best_weights=True, verbose=1),
        SaveBestModel(outputs["model"]),
        keras.callbacks.CSVLogger(str(outputs["log"])),
        PlotCurves(eval_dir),
    ]
    if t.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(1, t.patience // 3), verbose=1))
    history = unet.model.fit(train_ds, validation_data=val_ds, epochs=t.epochs,
                             callbacks=callbacks, verbose=2 if os.environ.get("CI") else "auto")
    val_losses = history.history["val_loss"]
    best_epoch = min(range(len(val_losses)), key=val_losses.__getitem__)
    return {"outputs": outputs, "epochs_run": len(val_losses), "best_epoch": best_epoch + 1,
            "best_val_loss": val_losses[best_epoch],
            "best_val_dice": history.history["val_dice"][best_epoch]}
