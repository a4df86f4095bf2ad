"""Fits the U-Net on the [train] pairs: validation split, early stopping, best model, logs, plots,
and a resume point after every epoch so a killed run continues where it stopped."""
import csv
import io
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from allseg.cells.instances import cell_settings
from allseg.core.accel import describe_device, resolve
from allseg.core.errors import ConfigError
from allseg.core.files import keep_previous, make_folder, replace_atomically, write_text
from allseg.core.run_lock import training_lock
from allseg.data.dataset import ALLDataset
from allseg.data.pairing import describe, split_pairs
from allseg.data.truth_audit import add_stained_cells, trusted_pairs
from allseg.model.shipped import BEST_MODEL
from allseg.model.unet import TensorflowUNet
from allseg.train.distribute import (
    build_for_cluster,
    is_chief,
    make_strategy,
    weights_fingerprint,
)
from allseg.train.plots import plot_history
from allseg.train.resume import (
    RESUME_DIR,
    ResumePoint,
    fingerprint,
    finish,
    load_unfinished,
    saved_size,
)
from allseg.train.tensorboard import (
    TENSORBOARD_DIR,
    as_write_error,
    tensorboard_callbacks,
)

TRAIN_LOG = "train_log.csv"
LOSS_PLOT = "train_losses.png"
METRIC_PLOT = "train_metrics.png"


class SaveBestModel(keras.callbacks.Callback):
    """Saves the model whenever val_loss improves, to a temp name first so a crash mid-write
    never leaves a truncated best model behind."""

    def __init__(self, path, best=math.inf, monitor="val_loss"):
        super().__init__()
        self.path, self.best, self.monitor = Path(path), best, monitor

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get(self.monitor)
        if loss is None or not loss < self.best:
            return
        self.best = loss
        with replace_atomically(self.path, lambda: saved_size(self.model)) as tmp:
            self.model.save(tmp)
        print(f"\nEpoch {epoch + 1}: {self.monitor} improved to {loss:.5f}; saved {self.path}")


class EpochLog(keras.callbacks.Callback):
    """The per-epoch history as a CSV (rewritten whole and renamed, never half-written) and as
    loss and metric graphs; starts from the rows of the run it resumes."""

    def __init__(self, csv_path, eval_dir, rows, write=True):
        super().__init__()
        self.csv_path, self.eval_dir, self.rows = Path(csv_path), Path(eval_dir), rows
        self.write = write  # False on the workers of a cluster other than the chief

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        if not self.write:
            return
        write_text(self.csv_path, rows_to_csv(self.rows))
        history = {key: [row[key] for row in self.rows if key in row] for key in self.rows[-1]}
        plot_history(history, ["loss"], "loss", self.eval_dir / LOSS_PLOT)
        plot_history(history, ["binary_accuracy", "dice", "iou"], "metrics",
                     self.eval_dir / METRIC_PLOT)


def rows_to_csv(rows):
    columns = ["epoch"] + sorted({key for row in rows for key in row} - {"epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_rows(csv_path, epochs):
    """The logged rows of epochs 0..epochs-1 (a resumed run drops any row past its checkpoint)."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(handle)]
    return [row for row in rows if row["epoch"] < epochs]


def best_row(rows, monitor="val_loss"):
    return min(rows, key=lambda row: row[monitor])


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping that, on a resumed run, carries on counting from the logged history."""

    def __init__(self, rows, best_model_path, monitor="val_loss", **kwargs):
        super().__init__(monitor=monitor, restore_best_weights=True, verbose=1, **kwargs)
        self.rows, self.best_model_path = rows, best_model_path

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.rows:
            best = best_row(self.rows, self.monitor)
            self.best, self.best_epoch = best[self.monitor], best["epoch"]
            self.wait = self.rows[-1]["epoch"] - best["epoch"]
            self.best_weights = keras.models.load_model(self.best_model_path).get_weights()


def learning_rate(cfg, steps_per_epoch):
    """A cosine decay over all epochs for lr_schedule = "cosine"; else the constant rate."""
    if cfg.train.lr_schedule != "cosine":
        return None
    return keras.optimizers.schedules.CosineDecay(
        cfg.model.learning_rate, decay_steps=cfg.train.epochs * steps_per_epoch, alpha=0.02)


def weight_map_settings(cfg):
    """border_weights' arguments after the mask, or None when neither weight is on. Checked
    here, not when the config loads: evaluating with touching cells unsplit is fine."""
    t = cfg.train
    min_area, split_depth, split_hole_px = cell_settings(cfg.infer)
    if t.contact_weight > 0 and split_depth <= 0:
        raise ConfigError(f"{cfg.path}: [train] contact_weight = {t.contact_weight:g} needs "
                          "[infer] cell_split_depth > 0: the contact lines are where that split "
                          "divides touching cells (cell_split_depth = 0 draws none)")
    if t.border_weight <= 0 and t.contact_weight <= 0:
        return None
    return (t.border_weight, t.border_sigma, min_area, t.contact_weight, split_depth,
            split_hole_px)


# The Kaggle truth's repairs and weights: made for one class, whole cells from a colour threshold
ONE_CLASS_KEYS = ("border_weight", "contact_weight", "skip_flagged_truth", "repair_flagged_truth",
                  "add_stained_cells")


def check_two_classes(cfg):
    """num_classes = 2 learns whole cells and nuclei from masks that carry both; the [train]
    keys that repair or weigh one-class truth cannot apply to them."""
    if cfg.model.num_classes != 2:
        return
    for key in ONE_CLASS_KEYS:
        value = getattr(cfg.train, key)
        if value:
            raise ConfigError(f"{cfg.path}: [train] {key} = {value!r}: works on one-class masks "
                              "only; with [model] num_classes = 2 (whole cells and nuclei) "
                              "leave it out or set it off (0, False or [])")


@dataclass(frozen=True)
class TrainingData:
    """What one training run consumes: an endless, seeded stream of training batches (skipping
    n of them replays what an uninterrupted run saw next), validation batches or None (then the
    training loss chooses the best model), and what identifies the data beyond the config, so
    that a killed run resumes only on the same."""
    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    steps_per_epoch: int
    identity: str = ""


def train(cfg, extra_callbacks=()):
    """Trains as the config says, resuming an unfinished run of the same config; returns a dict
    of what was written and how training went. extra_callbacks run after the project's own
    (the throughput benchmark times epochs with one)."""
    check_two_classes(cfg)
    strategy = make_strategy(cfg.train.strategy)  # first: multi_worker sets up before other TF work
    keras.utils.set_random_seed(cfg.train.seed)  # Python, NumPy and TensorFlow
    data = config_data(cfg, strategy.num_replicas_in_sync)

    def new_model(learning_rate):
        unet = TensorflowUNet(cfg, learning_rate=learning_rate)
        if cfg.model.show_summary:
            unet.summary()
        return unet.model

    return run_training(cfg, data, new_model, strategy, extra_callbacks)


def config_data(cfg, replicas):
    """The [train] pairs as TrainingData: split, audited, read and augmented as the config says."""
    t = cfg.train
    border = weight_map_settings(cfg)
    data = ALLDataset.from_config(cfg, "train")
    train_pairs, val_pairs = split_pairs(data.pairs, t.validation_split, t.seed)
    print(f"Data: {len(data)} pairs in {describe(t.image_datapath, t.category)}: "
          f"{len(train_pairs)} train, {len(val_pairs)} validation (seed {t.seed})")
    if t.skip_flagged_truth or t.repair_flagged_truth:  # after the split: same validation images
        train_pairs = trusted_pairs(train_pairs, "training", t.repair_flagged_truth)
        val_pairs = trusted_pairs(val_pairs, "validation", t.repair_flagged_truth)
    if t.add_stained_cells:
        train_pairs = add_stained_cells(train_pairs, t.add_stained_cells, "training")
        val_pairs = add_stained_cells(val_pairs, t.add_stained_cells, "validation")
    batch_size = t.batch_size * replicas  # [train] batch_size is per replica
    # One endless, seeded stream of batches: skipping the epochs already done replays the
    # exact order and augmentation an uninterrupted run would have seen next.
    train_ds = data.dataset(train_pairs, batch_size, shuffle_seed=t.seed, cache=t.cache,
                            flips=t.augment_flips, colour=t.augment_color, repeat=True,
                            border=border, truth_min_area=t.truth_min_area,
                            stain=t.augment_stain)
    val_ds = data.dataset(val_pairs, batch_size, cache=t.cache, truth_min_area=t.truth_min_area)
    return TrainingData(train_ds, val_ds, -(-len(train_pairs) // batch_size))


def run_training(cfg, data, new_model, strategy=None, extra_callbacks=()):
    """The one training loop: new_model(learning_rate) -> a compiled model, fitted on data with
    [train]'s epochs, schedule, early stopping, best model, logs and resume point, in [train]
    model_dir and eval_dir. A config's run and a lab's fine-tuning both come through here."""
    t = cfg.train
    strategy = strategy or make_strategy(t.strategy)
    chief, replicas = is_chief(strategy), strategy.num_replicas_in_sync
    print(f"Device: {describe_device()}; mixed precision "
          f"{'on' if resolve(t.mixed_precision) else 'off'}, XLA "
          f"{'on' if resolve(t.jit_compile) else 'off'}")
    if replicas > 1 or not chief:
        print(f"Distributed: {type(strategy).__name__}, {replicas} replicas, batch {t.batch_size} "
              f"per replica; this process {'writes' if chief else 'does not write'} the outputs")
    model_dir, eval_dir = Path(t.model_dir), Path(t.eval_dir)
    if chief:
        make_folder(model_dir, "[train] model_dir = ")
        make_folder(eval_dir, "[train] eval_dir = ")
    # Taken before anything in model_dir is touched: a second run must not set aside the first
    # run's model or resume its unfinished epochs. Only the chief writes there.
    with training_lock(model_dir, cfg.path) if chief else nullcontext():
        return _fit(cfg, strategy, data, new_model, extra_callbacks)


def _fit(cfg, strategy, data, new_model, extra_callbacks):
    """run_training's second half, once (on the chief) the run lock is held."""
    t, chief = cfg.train, is_chief(strategy)
    eval_dir, monitor = Path(t.eval_dir), monitored(data)
    outputs = {"model": Path(t.model_dir) / BEST_MODEL, "log": eval_dir / TRAIN_LOG,
               "loss_plot": eval_dir / LOSS_PLOT, "metric_plot": eval_dir / METRIC_PLOT}
    resume_dir, config_hash = Path(t.model_dir) / RESUME_DIR, fingerprint(cfg, data.identity)
    # Resume points are the chief's alone; a cluster's workers could not share them.
    resumable = chief and t.strategy != "multi_worker"
    with strategy.scope():
        unfinished = load_unfinished(resume_dir, config_hash, cfg.path) if resumable else None
        model, done, rows = build_or_resume(cfg, outputs, unfinished, new_model,
                                            data.steps_per_epoch, chief)
    build_for_cluster(model, strategy, data.validation)
    try:
        callbacks = make_callbacks(t, outputs, rows, data.validation, chief, resumable,
                                   config_hash, monitor)
    except tf.errors.OpError as exc:
        raise as_write_error(exc, eval_dir / TENSORBOARD_DIR) from None
    callbacks += list(extra_callbacks)
    # A run killed after early stopping had decided, but before it cleaned up, has nothing left.
    stopped_already = bool(rows) and (rows[-1]["epoch"] - best_row(rows, monitor)["epoch"]
                                      >= t.patience)
    began = time.perf_counter()
    if done < t.epochs and not stopped_already:
        fit_epochs(model, data, rows, t, callbacks, resumable and resume_dir)
    seconds = time.perf_counter() - began
    if resumable:
        finish(resume_dir)
    print(f"Final weights fingerprint: {weights_fingerprint(model)}")
    best = best_row(rows, monitor)
    prefix = "val_" if monitor == "val_loss" else ""
    return {"outputs": outputs if chief else {}, "epochs_run": len(rows), "model": model,
            "best_epoch": best["epoch"] + 1, "monitor": monitor, "best_loss": best[monitor],
            "best_dice": best.get(prefix + "dice"), "seconds": seconds}


def monitored(data):
    """What chooses the best epoch: the validation loss, or the training loss without one."""
    return "loss" if data.validation is None else "val_loss"


def fit_epochs(model, data, rows, t, callbacks, resume_dir):
    """model.fit on from the epochs done (the log's rows); a kill says where they are kept."""
    done = len(rows)
    try:
        # shuffle=False: the stream shuffles itself, from the seed, so that a resumed run
        # replays the same order; Keras's own shuffle cannot apply to a tf.data.Dataset
        # and only warns that it was asked for (its default is True).
        model.fit(data.train.skip(done * data.steps_per_epoch),
                  steps_per_epoch=data.steps_per_epoch, initial_epoch=done, epochs=t.epochs,
                  validation_data=data.validation, callbacks=callbacks, shuffle=False,
                  verbose=2 if os.environ.get("CI") else "auto")
    except tf.errors.OpError as exc:  # TensorBoard's writer on a full or read-only disk
        raise as_write_error(exc, Path(t.eval_dir) / TENSORBOARD_DIR) from None
    except KeyboardInterrupt:
        if resume_dir:
            print(f"\nStopped after {len(rows)} completed epochs, saved in {resume_dir}: "
                  "run the same command again to go on from there")
        raise


def make_callbacks(t, outputs, rows, val_ds, chief, resumable, config_hash, monitor):
    """Early stopping and the log on every process; the best model, TensorBoard and the resume
    point only where outputs are written. The resume point comes last, after what it records."""
    model_dir, eval_dir = Path(t.model_dir), Path(t.eval_dir)
    callbacks = [ResumableEarlyStopping(rows, outputs["model"], monitor, patience=t.patience)]
    if chief:
        best_so_far = min((r[monitor] for r in rows), default=math.inf)
        callbacks.append(SaveBestModel(outputs["model"], best_so_far, monitor))
    callbacks.append(EpochLog(outputs["log"], eval_dir, rows, write=chief))
    if t.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.5, patience=max(1, t.patience // 3), verbose=1))
    if t.tensorboard and chief:
        images = val_ds is not None and t.strategy != "multi_worker"
        callbacks += tensorboard_callbacks(eval_dir, val_ds, images=images)
    if resumable:
        callbacks.append(ResumePoint(model_dir / RESUME_DIR, config_hash))
    return callbacks


def build_or_resume(cfg, outputs, unfinished, new_model, steps_per_epoch, chief):
    """(model, epochs done, log rows): the unfinished run's, or new_model(learning rate) (after
    setting the earlier outputs aside)."""
    t = cfg.train
    if unfinished:
        model, done = unfinished
        model.jit_compile = resolve(t.jit_compile)
        print(f"Resuming the unfinished run in {Path(t.model_dir) / RESUME_DIR}: "
              f"{done} of {t.epochs} epochs done")
        return model, done, read_rows(outputs["log"], done)
    for path in outputs.values() if chief else ():
        kept = keep_previous(path)
        if kept:
            print(f"Kept the previous {path.name} as {kept}")
    return new_model(learning_rate(cfg, steps_per_epoch)), 0, []
