"""A lab's model: the start model fine-tuned on most of the lab's outlined images (the train
stage's one loop), both scored on the images held out by the evaluator's per-image scorer, and
the better one kept, with its config and card.

    images + masks -> held-out split -> scale -> allseg/train/fine_tune.py -> held-out scores,
    start against fine-tuned -> DIR/best_model.keras, best_model.config, README.md,
    held_out_scores.json (an earlier model in DIR is kept in DIR/earlier-<time>/).
"""
import configparser
import copy
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import keras

from allseg.cells.instances import cell_settings
from allseg.cells.scoring import score_image, summarize_images
from allseg.core.files import make_folder, write_text
from allseg.infer.predict import predict_cells
from allseg.infer.scale import resampling
from allseg.model.saving import save_for_inference
from allseg.model.shipped import BEST_MODEL
from allseg.train.fine_tune import (FineTuneSettings, fine_tune_config, fine_tune_model,
                                    model_file, prepare, template_config)

CARD = "README.md"
SCORES = "held_out_scores.json"
# A blast call goes with the model it was fitted on: an earlier model takes its call along
MODEL_FILES = (BEST_MODEL, "best_model.config", CARD, SCORES, "best_model.blasts.json",
               "blast_scores.json")
# The keys the written config takes from the fine-tuned model's settings, by section
WRITTEN_KEYS = {
    "model": ("num_classes", "cell_diameter_px", "tta_flips", "learning_rate"),
    "infer": ("cell_min_area", "cell_split_depth", "cell_split_hole_px", "pixel_size_um",
              "cell_diameter"),
    "train": ("epochs", "patience", "batch_size", "seed", "lr_schedule", "loss", "eval_dir"),
}


# ---- held-out scores -------------------------------------------------------------------------

def held_out_scores(model, cfg, samples, scale):
    """The samples predicted as the infer script runs the model and scored by the evaluator's
    per-image scorer against the lab's own cells: whole-cell Dice (mean over images), cells
    found (IoU >= 0.5, of the true ones), count error (mean |predicted - true| an image), with
    nuclei the nucleus Dice and the mean N:C error of the found cells; and each image's figures
    (per_image), to see which held-out image a model does badly on."""
    cell_keys, rows = cell_settings(cfg.infer, scale), []
    for sample in samples:
        (pred,) = predict_cells(model, [sample.rgb], cfg.model, cfg.train.batch_size, "auto",
                                scale)
        nucleus = pred[..., 1] if pred.shape[-1] > 1 and sample.nucleus is not None else None
        row, *_ = score_image(sample.name, pred[..., 0], sample.labels > 0, cell_keys,
                              true_labels=sample.labels, pred_nucleus=nucleus,
                              true_nucleus=sample.nucleus)
        rows.append(row)
    return held_out_figures(summarize_images(rows, cell_keys))


def held_out_figures(summary):
    """The figures fine-tuning compares and prints, from the scorer's summary."""
    cells = summary["cells"]
    scores = {"images": summary["num_images"], "whole_cell_dice": summary["mean_dice"],
              "found": cells["tp"] / max(1, cells["n_true"]), "count_error": cells["count_mae"]}
    if "nuclei" in summary:
        scores["nucleus_dice"] = summary["nuclei"]["mean_dice"]
        scores["nc_error"] = summary["nuclei"]["nc_error_mean"]
        if scores["nc_error"] is None:
            scores["nc_error"] = math.nan
    return {**scores, "per_image": [held_out_row(r) for r in summary["per_image"]]}


def held_out_row(row):
    """One image's figures, named as fine-tuning names them."""
    figures = {"image": row["file"], "whole_cell_dice": row["dice"],
               "cells_true": row["cells"]["n_true"], "cells_predicted": row["cells"]["n_pred"],
               "cells_found": row["cells"]["tp"]}
    if "nucleus" in row:
        figures["nucleus_dice"] = row["nucleus"]["dice"]
    return figures


def better(tuned, start):
    """Whether the fine-tuned model beats the start on the held-out images: a higher whole-cell
    Dice with no fewer cells found, or more cells found."""
    if start is None:
        return True
    return (tuned["found"], tuned["whole_cell_dice"]) > (start["found"], start["whole_cell_dice"])


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


# ---- the whole job ---------------------------------------------------------------------------

def fine_tune(images_dir, masks_dir, output_dir, model_choice="pretrained", settings=None,
              pixel_size_um=None, cell_diameter=None, log=print):
    """Fine-tunes and writes output_dir/best_model.keras (the better of the start and the
    fine-tuned model), its config and card; returns the card's facts. masks_dir None: masks
    beside the images (Cellpose's layout). cell_diameter: the lab's cells' diameter in pixels,
    where it knows it better than its training masks tell."""
    settings = settings or FineTuneSettings()
    start = model_file(model_choice)
    template = template_config(start)
    lab = prepare(images_dir, masks_dir, settings, cell_diameter, log)
    source = "as --cell-diameter gives" if cell_diameter else "the median of the training masks"
    log(f"The cells of the training images are {lab.diameter:.0f} px across ({source}): images "
        f"resized by {lab.scale:.3g} to train and to segment")
    log(f"{len(lab.train)} images to train on, {len(lab.held_out)} held out to check the result "
        f"({'whole cell and nucleus' if lab.classes == 2 else 'whole cell'})")
    output = Path(output_dir)
    make_folder(output, "--output ")
    lab_infer = {"cell_diameter": round(lab.diameter, 1) if lab.diameter else "auto"}
    if pixel_size_um:
        lab_infer["pixel_size_um"] = pixel_size_um
    cfg = fine_tune_config(template, settings, lab.classes, lab.train, lab.scale, output,
                           lab_infer)
    first, start_cfg, before = start_scores(start, template, lab.held_out, Path(images_dir),
                                            pixel_size_um)
    result = fine_tune_model(start, cfg, lab.train, settings, lab.scale)
    after = held_out_scores(result["model"], cfg, lab.held_out, lab.scale)
    kept = better(after, before)
    facts = {"start": str(start or "none (from scratch)"), "classes": lab.classes,
             "train_images": [x.name for x in lab.train],
             "held_out_images": [x.name for x in lab.held_out],
             "train_cells": int(sum(x.labels.max() for x in lab.train)), "scale": lab.scale,
             "settings": asdict(settings), "train_seconds": round(result["seconds"], 1),
             "start_scores": before, "fine_tuned_scores": after,
             "kept": "fine-tuned" if kept else "start"}
    log(comparison(before, after, kept))
    keep_earlier_model(output, log)
    if kept:
        write_lab_model(result["model"], cfg, output, facts)
    else:
        write_lab_model(first, start_cfg, output, facts)
    return facts


def start_scores(start, template, held, images_dir, pixel_size_um):
    """(the start model, its config as it would be written, its held-out scores at the scale
    `auto` reads); (None, template, None) from scratch."""
    if start is None:
        return None, template, None
    cfg = copy.deepcopy(template)
    cfg.infer.cell_diameter = "auto"
    if pixel_size_um:
        cfg.infer.pixel_size_um = pixel_size_um
    model = keras.models.load_model(start, compile=False)
    scale, _ = resampling(cfg, model, [images_dir / x.name for x in held])
    return model, cfg, held_out_scores(model, cfg, held, scale)


# ---- what is written -------------------------------------------------------------------------

def keep_earlier_model(output, log=print, names=MODEL_FILES, key=BEST_MODEL):
    """Moves the files of names already in output (a model, its config, card and scores, or
    its blast call) into output/earlier-<key's time>/, so that a second run loses nothing."""
    if not (output / key).exists():
        return
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime((output / key).stat().st_mtime))
    folder, n = output / f"earlier-{stamp}", 1
    while folder.exists():
        n += 1
        folder = output / f"earlier-{stamp}-{n}"
    folder.mkdir()
    for name in names:
        if (output / name).exists():
            os.replace(output / name, folder / name)
    log(f"Kept the earlier {'model' if key == BEST_MODEL else 'blast call'} of {output} in "
        f"{folder}")


def write_lab_model(model, cfg, output, facts):
    """best_model.keras, its config (best_model.config), scores and card (README.md) in output;
    the model first and the card last, so a card says the rest is complete."""
    facts["sha256"] = save_for_inference(model, output / BEST_MODEL)
    write_text(output / "best_model.config", config_text(cfg, output))
    write_text(output / SCORES, json.dumps(facts, indent=2) + "\n")
    write_text(output / CARD, card(facts))


def literal(value):
    """A config value as the config reader parses it back."""
    if isinstance(value, str):
        return json.dumps(value)
    return str(value) if isinstance(value, (bool, int)) else f"{value:g}"


def config_text(cfg, output):
    """The template's file with the model's WRITTEN_KEYS, by name, and model_dir = output."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(template_path(cfg), encoding="utf-8")
    for section, keys in WRITTEN_KEYS.items():
        for key in keys:
            parser[section][key] = literal(getattr(getattr(cfg, section), key))
    parser["train"]["model_dir"] = json.dumps(Path(output).as_posix())
    lines = []
    for section in parser.sections():
        lines += [f"[{section}]"] + [f"{k} = {v}" for k, v in parser[section].items()] + [""]
    return ("; Written by TensorflowUNetALLTrainer.py --images ... --output ...: the settings "
            "this model runs with.\n" + "\n".join(lines))


def template_path(cfg):
    """The config file cfg was made from (a fine-tuning config names its template)."""
    return getattr(cfg, "template_path", cfg.path)


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
