"""A lab's model: a trained model (or none) fitted to a few of the lab's own outlines, and kept
only if it beats where it started on the lab's own held-out images.

    images + masks (any format of allseg/data/lab_masks.py) -> held-out split -> start model (its
    head widened to whole cell + nucleus when the masks carry nuclei) -> random crops, flips,
    turns and stain jitter at the training scale -> held-out scores, start against fine-tuned ->
    DIR/best_model.keras, its config and its card.
"""
import configparser
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np

from allseg.cells.instances import cell_settings, label_cells, median_cell_diameter
from allseg.cells.matching import match_cells, nc_errors
from allseg.core.config import load_config
from allseg.core.errors import UserError
from allseg.core.files import make_folder, replace_atomically, write_text
from allseg.data.images import read_rgb
from allseg.data.lab_masks import read_lab_masks, summary_line
from allseg.infer.engines import sha256_file
from allseg.infer.predict import predict_cells, resize_by
from allseg.infer.scale import resampling
from allseg.model.architecture import build_unet
from allseg.model.losses_metrics import BceDice, make_metrics
from allseg.model.shipped import BEST_MODEL, CELL_KEYS, SHIPPED_MODEL, checked_model_file

CARD = "README.md"
SCORES = "held_out_scores.json"
STEPS_PER_EPOCH = 25  # an epoch: this many batches of random crops, however few the images
# The lab's images are resized so that their cells are about this wide to train and predict:
# CellaVision's 140 px cells at half size beat them as they are by 0.03-0.05 whole-cell Dice from
# either start, and a third of their size lost nucleus Dice (docs/finetuning.md)
TRAIN_CELL_PX = 70


@dataclass
class Settings:
    epochs: int = 60
    batch_size: int = 4
    learning_rate: float = 1e-3
    scale: float | None = None  # the lab's images resized by this to train and to predict;
                                # None: so that their cells are TRAIN_CELL_PX wide (never enlarged)
    held_out: float = 0.2       # of the images, at least one, scored and never trained on
    seed: int = 0
    stain_jitter: float = 0.1   # brightness, contrast and per-channel gain, +- this fraction
    cosine: bool = True         # the learning rate decays to 2% over the run (else constant)


@dataclass
class Sample:
    name: str
    rgb: np.ndarray             # at the image's own size
    labels: np.ndarray          # int32 cells
    nucleus: np.ndarray | None


# ---- data ------------------------------------------------------------------------------------

def read_samples(images_dir, masks_dir):
    lab = read_lab_masks(images_dir, masks_dir)
    print(summary_line(lab))
    return [Sample(m.image.name, read_rgb(m.image), m.labels, m.nucleus) for m in lab]


def split_held_out(samples, fraction, seed):
    """(train, held out): a seeded fraction of the images, at least one, held out."""
    if len(samples) < 2:
        raise UserError(f"{len(samples)} image: fine-tuning needs at least 2 (one to train on, "
                        "one to check the result on)")
    order = np.random.default_rng(seed).permutation(len(samples))
    held = max(1, round(fraction * len(samples)))
    return [samples[i] for i in sorted(order[held:])], [samples[i] for i in sorted(order[:held])]


def targets(sample, classes):
    """(H, W, classes) float32: whole cell, and the nucleus for a two-class model."""
    planes = [sample.labels > 0]
    if classes == 2:
        planes.append(sample.nucleus if sample.nucleus is not None else np.zeros_like(planes[0]))
    return np.stack(planes, axis=-1).astype(np.float32)


def random_crops(samples, classes, size, batch, scale, jitter, rng):
    """Endless batches (x, y) of size x size crops at the training scale, each turned by a
    multiple of 90 degrees, maybe mirrored, and its stain jittered; images smaller than a crop
    are mirror-padded."""
    pairs = []
    for s in samples:
        rgb, y = resize_by(s.rgb, scale), targets(s, classes)
        y = cv2.resize(y, rgb.shape[1::-1], interpolation=cv2.INTER_LINEAR).reshape(
            *rgb.shape[:2], classes)
        pad = [(0, max(0, size - n)) for n in rgb.shape[:2]]
        pairs.append((np.pad(rgb, pad + [(0, 0)], "reflect"), np.pad(y, pad + [(0, 0)], "reflect")))
    while True:
        xs, ys = [], []
        for i in rng.integers(len(pairs), size=batch):
            rgb, y = pairs[i]
            top, left = (rng.integers(n - size + 1) for n in rgb.shape[:2])
            x = rgb[top:top + size, left:left + size].astype(np.float32)
            t = y[top:top + size, left:left + size]
            turns, mirror = rng.integers(4), rng.integers(2)
            x, t = np.rot90(x, turns), np.rot90(t, turns)
            if mirror:
                x, t = x[:, ::-1], t[:, ::-1]
            gain = 1 + rng.uniform(-jitter, jitter, 3)
            contrast, brightness = 1 + rng.uniform(-jitter, jitter), rng.uniform(-jitter, jitter)
            mean = x.mean()
            x = (x - mean) * contrast + mean * (1 + brightness)
            xs.append(np.clip(x * gain, 0, 255))
            ys.append(t > 0.5)
        yield np.stack(xs), np.stack(ys).astype(np.float32)


# ---- models ----------------------------------------------------------------------------------

def model_file(choice):
    """The .keras file --model names (None for "none": from scratch)."""
    return None if choice in (None, "none") else checked_model_file(choice)


def template_config(start):
    """The config whose [model] graph and [infer] cell keys a new model takes: the start
    model's own, or the shipped model's for one trained from scratch."""
    path = (start or SHIPPED_MODEL).with_suffix(".config")
    if not path.is_file():
        raise UserError(f"{start}: no config beside it ({path.name}); fine-tuning needs the "
                        "settings the model was made with")
    return load_config(path)


def start_model(start, cfg, classes):
    """The model training starts from: the start file's weights with a head of ``classes``
    outputs (a new nucleus output begins as a copy of the whole-cell one: a nucleus lies inside
    its cell), or a new graph like the template's."""
    m = cfg.model
    if start is None:
        keras.utils.set_random_seed(0)
        return build_unet(m.image_height, m.image_width, m.image_channels, classes,
                          m.base_filters, m.num_layers, m.dropout_rate, m.activation,
                          m.batch_norm, m.stain_normalize)
    model = keras.models.load_model(start, compile=False)
    head = model.get_layer("mask")
    have = head.get_config()["filters"]
    if have == classes:
        return model
    if have != 1 or classes != 2:
        raise UserError(f"{start} has {have} outputs; it can be fine-tuned to {have}, or from 1 "
                        "to 2 (whole cell and nucleus)")
    kernel, bias = head.get_weights()
    wider = keras.layers.Conv2D(2, 1, activation="sigmoid", dtype="float32", name="mask")
    outputs = wider(head.input)
    wider.set_weights([np.concatenate([kernel, kernel], -1), np.concatenate([bias, bias])])
    return keras.Model(model.input, outputs, name=model.name)


def fit(model, train, classes, s, size, log=print):
    """Fits model in place: Adam with a cosine decay, BCE + Dice on every output."""
    steps = s.epochs * STEPS_PER_EPOCH
    schedule = (keras.optimizers.schedules.CosineDecay(s.learning_rate, steps, alpha=0.02)
                if s.cosine else s.learning_rate)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=BceDice(),
                  metrics=make_metrics())
    batches = random_crops(train, classes, size, s.batch_size, s.scale, s.stain_jitter,
                           np.random.default_rng(s.seed))
    log(f"Training {s.epochs} epochs of {STEPS_PER_EPOCH} batches of {s.batch_size} random "
        f"{size} px crops (learning rate {s.learning_rate:g}, images resized by {s.scale:g})")
    progress = keras.utils.Progbar(steps, unit_name="step")
    for step in range(steps):
        x, y = next(batches)
        loss = model.train_on_batch(x, y, return_dict=True)["loss"]
        progress.update(step + 1, [("loss", float(loss))])
    return model


# ---- scores on the held-out images ------------------------------------------------------------

def held_out_scores(model, cfg, held, scale):
    """Whole-cell Dice (mean over images), cells found (IoU >= 0.5, of the true ones), count
    error (mean |predicted - true| an image); with nuclei on both sides, nucleus Dice and the
    mean N:C error of the found cells; and each image's own figures (per_image), to see which
    held-out image a model does badly on."""
    rows, nc_diffs = [], []
    for sample in held:
        (pred,) = predict_cells(model, [sample.rgb], cfg.model, cfg.train.batch_size, "auto", scale)
        cells = label_cells(pred[..., 0], *cell_settings(cfg.infer, scale))
        match = match_cells(sample.labels, cells)
        rows.append({"image": sample.name, "whole_cell_dice": _dice(pred[..., 0], sample.labels > 0),
                     "cells_true": match["n_true"], "cells_predicted": match["n_pred"],
                     "cells_found": match["tp"]})
        if pred.shape[-1] > 1 and sample.nucleus is not None:
            rows[-1]["nucleus_dice"] = _dice(pred[..., 1], sample.nucleus)
            nc_diffs += nc_errors(sample.labels, sample.nucleus, cells, pred[..., 1],
                                  match["pairs"])
    true_cells = sum(r["cells_true"] for r in rows)
    scores = {"images": len(held), "whole_cell_dice": _mean(rows, "whole_cell_dice"),
              "found": sum(r["cells_found"] for r in rows) / max(1, true_cells),
              "count_error": float(np.mean([abs(r["cells_predicted"] - r["cells_true"])
                                            for r in rows]))}
    nucleus = [r for r in rows if "nucleus_dice" in r]
    if nucleus:
        scores["nucleus_dice"] = _mean(nucleus, "nucleus_dice")
        scores["nc_error"] = float(np.mean(nc_diffs)) if nc_diffs else math.nan
    return {**scores, "per_image": rows}


def _mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


def _dice(pred, truth):
    total = np.count_nonzero(pred) + np.count_nonzero(truth)
    return 2 * np.count_nonzero(pred & truth) / total if total else 1.0


def better(tuned, start):
    """Whether the fine-tuned model beats the start on the held-out images: a higher whole-cell
    Dice with no fewer cells found, or more cells found."""
    if start is None:
        return True
    return (tuned["found"], tuned["whole_cell_dice"]) > (start["found"], start["whole_cell_dice"])


# ---- the whole job ---------------------------------------------------------------------------

def finetune(images_dir, masks_dir, output_dir, model_choice="pretrained", settings=None,
             pixel_size_um=None, cell_diameter=None, log=print):
    """Fine-tunes and writes output_dir/best_model.keras (the better of the start and the
    fine-tuned model), its config and card; returns the card's facts. cell_diameter: the lab's
    cells' diameter in pixels, where it knows it better than its training masks tell."""
    s = settings or Settings()
    samples = read_samples(images_dir, masks_dir)
    classes = 2 if any(x.nucleus is not None for x in samples) else 1
    start = model_file(model_choice)
    cfg = template_config(start)
    train, held = split_held_out(samples, s.held_out, s.seed)
    diameter = cell_diameter or median_diameter(train)
    s.scale = training_scale(diameter) if s.scale is None else s.scale
    source = "as --cell-diameter gives" if cell_diameter else "the median of the training masks"
    log(f"The cells of the training images are {diameter:.0f} px across ({source}): images "
        f"resized by {s.scale:.3g} to train and to segment")
    log(f"{len(train)} images to train on, {len(held)} held out to check the result "
        f"({'whole cell and nucleus' if classes == 2 else 'whole cell'})")
    output = Path(output_dir)
    make_folder(output, "--output ")
    before = None
    if start is not None:
        cfg.infer.cell_diameter = "auto"
        first = keras.models.load_model(start, compile=False)
        start_scale, why = resampling(cfg, first, [images_dir / x.name for x in held])
        before = held_out_scores(first, cfg, held, start_scale)
    model, tuned_cfg, seconds = fine_tuned(start, cfg, train, classes, s, log)
    # The lab's microscope is the one its images came from: segment them as trained
    tuned_cfg.infer.cell_diameter = round(diameter, 1) if diameter else "auto"
    for written in (cfg, tuned_cfg) if pixel_size_um else ():
        written.infer.pixel_size_um = pixel_size_um
    after = held_out_scores(model, tuned_cfg, held, s.scale)
    kept = better(after, before)
    facts = {"start": str(start or "none (from scratch)"), "classes": classes,
             "train_images": [x.name for x in train], "held_out_images": [x.name for x in held],
             "train_cells": int(sum(x.labels.max() for x in train)), "scale": s.scale,
             "settings": vars(s), "train_seconds": round(seconds, 1),
             "start_scores": before, "fine_tuned_scores": after, "kept": "fine-tuned" if kept
             else "start"}
    log(comparison(before, after, kept))
    if kept:
        write_model(model, tuned_cfg, output, facts)
    else:
        write_model(keras.models.load_model(start, compile=False), cfg, output, facts)
    return facts


def fine_tuned(start, cfg, train, classes, s, log=print):
    """(model, its config, training seconds): the start model (None: a new one like cfg's)
    fitted to the train samples."""
    s.scale = training_scale(median_diameter(train)) if s.scale is None else s.scale
    model = start_model(start, cfg, classes)
    began = time.perf_counter()
    fit(model, train, classes, s, cfg.model.image_height, log)
    return model, tuned_config(cfg, classes, train, s.scale), time.perf_counter() - began


def training_scale(diameter):
    """The factor that makes cells of this diameter TRAIN_CELL_PX wide, at most 1."""
    return min(1.0, TRAIN_CELL_PX / diameter) if diameter else 1.0


def median_diameter(samples):
    """The median equivalent diameter (px) of the samples' outlined cells; 0.0 without any."""
    areas = np.concatenate([np.bincount(x.labels.ravel())[1:] for x in samples])
    areas = areas[areas > 0]
    return float(np.median(np.sqrt(4 * areas / np.pi))) if len(areas) else 0.0


def tuned_config(cfg, classes, train, scale):
    """The template's config for the fine-tuned model: its classes, the size of cell it learned
    (at the training scale) and cell keys scaled with it, so its cells are counted alike."""
    tuned = load_config(cfg.path)
    tuned.model.num_classes = classes
    # Flips averaged: on the CellaVision learning curve they added 0.003-0.005 whole-cell Dice
    # at every k, for four predictions a tile (docs/finetuning.md); tta_flips = False undoes it
    tuned.model.tta_flips = True
    masks = [cv2.resize((x.labels > 0).astype(np.uint8), resize_by(x.rgb, scale).shape[1::-1],
                        interpolation=cv2.INTER_NEAREST) > 0 for x in train]
    keys = [getattr(cfg.infer, k) for k in CELL_KEYS]
    learned = median_cell_diameter(masks, *keys) or cfg.model.cell_diameter_px
    ratio = learned / cfg.model.cell_diameter_px if cfg.model.cell_diameter_px else 1.0
    tuned.model.cell_diameter_px = round(learned, 1)
    tuned.infer.cell_min_area = max(1, round(keys[0] * ratio ** 2))
    tuned.infer.cell_split_depth = round(keys[1] * ratio, 2)
    tuned.infer.cell_split_hole_px = round(keys[2] * ratio ** 2)
    return tuned


def comparison(before, after, kept):
    """The held-out scores side by side, and what was kept, in plain words."""
    names = ("whole_cell_dice", "found", "count_error", "nucleus_dice", "nc_error")
    rows = [f"{'held-out images':20s} {'start':>10s} {'fine-tuned':>11s}"]
    for name in names:
        if name in after or (before and name in before):
            old = f"{before[name]:.3f}" if before and name in before else "-"
            rows.append(f"{name:20s} {old:>10s} {after.get(name, math.nan):11.3f}")
    verdict = ("Kept the fine-tuned model: it beats the start on the held-out images."
               if kept else "Kept the START model: the fine-tuned one is not better on the "
               "held-out images (more images, more epochs or --model none may help).")
    return "\n".join(rows + [verdict])


def write_model(model, cfg, output, facts):
    """best_model.keras, its config (best_model.config) and card (README.md) in output."""
    path = output / BEST_MODEL
    model.compile(optimizer=keras.optimizers.SGD(), loss=BceDice(), metrics=make_metrics())
    with replace_atomically(path) as tmp:
        model.save(tmp)
    write_text(path.with_suffix(".config"), config_text(cfg, output))
    facts["sha256"] = sha256_file(path)
    write_text(output / SCORES, json.dumps(facts, indent=2) + "\n")
    write_text(output / CARD, card(facts))


def config_text(cfg, output):
    """cfg's file with the fine-tuned model's [model] and [infer] cell values and folders."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(cfg.path, encoding="utf-8")
    parser["model"]["num_classes"] = str(cfg.model.num_classes)
    parser["model"]["cell_diameter_px"] = f"{cfg.model.cell_diameter_px:g}"
    parser["model"]["tta_flips"] = str(cfg.model.tta_flips)
    for key in (*CELL_KEYS, "pixel_size_um"):
        parser["infer"][key] = f"{getattr(cfg.infer, key):g}"
    diameter = cfg.infer.cell_diameter
    parser["infer"]["cell_diameter"] = json.dumps(diameter)
    parser["train"]["model_dir"] = json.dumps(Path(output).as_posix())
    lines = []
    for section in parser.sections():
        lines += [f"[{section}]"] + [f"{k} = {v}" for k, v in parser[section].items()] + [""]
    return "; Written by TensorflowUNetALLTrainer.py --images ... --masks ...: the settings " \
           "this model runs with.\n" + "\n".join(lines)


def card(facts):
    before, after = facts["start_scores"], facts["fine_tuned_scores"]
    return "\n".join([
        "# A lab's fine-tuned model", "",
        f"- started from: {facts['start']}",
        f"- outputs: {'whole cell and nucleus' if facts['classes'] == 2 else 'whole cell'}",
        f"- trained on {len(facts['train_images'])} images ({facts['train_cells']} cells), "
        f"resized by {facts['scale']:g}; {facts['train_seconds']:.0f} s",
        f"- held out: {', '.join(facts['held_out_images'])}",
        f"- kept: the {facts['kept']} model (SHA-256 `{facts['sha256']}`)", "",
        "```", comparison(before, after, facts["kept"] == "fine-tuned"), "```", "",
        f"Settings: {json.dumps(facts['settings'])}. Every figure is in {SCORES}.", ""])
