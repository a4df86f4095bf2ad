"""A lab's own blast call: its labelled cells found (cut out, or segmented by the model and the
cell at each image's centre taken), the call fitted to them, scored across folds against the
call the model already carries (if any) and the better one written beside the model.

    DIR/blast, DIR/normal -> central cells -> cell_features -> allseg/train/blast_fit.py ->
    cross-validated scores, start against fitted -> OUT/best_model.keras (the segmentation,
    copied), best_model.config, best_model.blasts.json, blast_scores.json
    (an earlier call or model in OUT is kept in OUT/earlier-<time>/).
"""
import json
import shutil
from pathlib import Path

import numpy as np

from allseg.cells.blast_call import blast_call_path, read_blast_call
from allseg.cells.cell_features import FEATURE_NAMES, cell_features
from allseg.cells.instances import cell_settings, central_cell, label_cells
from allseg.cells.scoring import call_scores
from allseg.core.cli import DEFAULT_CONFIG
from allseg.core.errors import DataError, UserError, first_few
from allseg.core.files import make_folder, write_text
from allseg.data.labelled_cells import cut_out_cell, read_cell_image, read_labelled_cells
from allseg.evaluate.fine_tune import keep_earlier_model
from allseg.infer.engines import load_predictor
from allseg.infer.predict import predict_cells
from allseg.infer.scale import resampling
from allseg.model.shipped import BEST_MODEL, load_for_model, trained_model_path
from allseg.train.blast_fit import cross_validated, fit_blast_call

MIN_CELLS = 3  # of each class: fewer leave no fold to score the call on
CALL_FILES = (blast_call_path(BEST_MODEL).name, "blast_scores.json")


def fit_blasts(cells_dir, output, model_choice="pretrained", log=print):
    """Fits the call to the cells in cells_dir and writes the better of it and the model's own
    into output; returns the facts written to output/blast_scores.json."""
    cells = read_labelled_cells(cells_dir)
    for name, want in (("blast", True), ("normal", False)):
        if sum(c.is_blast == want for c in cells) < MIN_CELLS:
            raise UserError(f"--cells {cells_dir}: fewer than {MIN_CELLS} {name} cells; the "
                            "call's scores need a few of each to hold out (10 help)")
    cfg = load_for_model(DEFAULT_CONFIG, model_choice, log)
    features = central_cell_features(cells, cfg, log)
    is_blast = [c.is_blast for c in cells]
    start_file = trained_model_path(cfg)
    start = model_call(start_file, log)
    facts = compare(start, features, is_blast, cells_dir, start_file)
    log(side_by_side(facts))
    write_call(Path(output), start_file, start if facts["kept"] == "start" else
               fit_blast_call(features, is_blast, facts["about"]), facts, log)
    return facts


def model_call(model_file, log=print):
    """The call the model already carries, if any and if this version can read it: one made
    for other cell features is set aside (the fit starts afresh), with a line saying so."""
    if not blast_call_path(model_file).is_file():
        return None
    try:
        return read_blast_call(blast_call_path(model_file))
    except DataError as exc:
        log(f"Not starting from the model's own call: {exc}")
        return None


def central_cell_features(cells, cfg, log=print):
    """cell_features' row of each labelled cell: the outline the lab drew, the cell it cut out,
    or else the model's cell at the image's centre; a DataError naming every image whose centre
    holds no cell, before anything is written."""
    images = {}
    for cell in cells:  # a QuPath image holds many cells: read once
        if cell.path not in images:
            images[cell.path] = read_cell_image(cell)
    found = [drawn_or_cut_out(cell, images[cell.path]) for cell in cells]
    to_segment = [i for i, pair in enumerate(found) if pair is None]
    if to_segment:
        centres = segmented_centres([images[cells[i].path] for i in to_segment],
                                    [cells[i].path for i in to_segment], cfg, log)
        for i, centre in zip(to_segment, centres):
            found[i] = centre
    empty = [c.path for c, pair in zip(cells, found) if pair is None]
    if empty:
        raise DataError(f"no cell at the centre of {first_few(empty)}: each image's central "
                        "cell carries its folder's label; crop it around the cell")
    return [cell_features(rgb, labels)[1][0] for rgb, labels in found]


def drawn_or_cut_out(cell, rgb):
    """(RGB, int label image of the one cell) where the lab outlined or cut out the cell;
    None where the model must find it."""
    if cell.outline is not None:
        (rows, cols), inside = cell.outline
        return rgb[rows, cols], inside.astype(np.int32)
    cut = cut_out_cell(rgb)
    return None if cut is None else (rgb, cut)


def segmented_centres(images, paths, cfg, log=print):
    """(RGB, int label image of its central cell) of each image as the model segments it at the
    scale auto reads, or None where no cell is at its centre."""
    model = load_predictor(cfg, log=log)
    scale, why = resampling(cfg, model, paths)
    log(why or "Scale: the images as given")
    masks = predict_cells(model, images, cfg.model, cfg.train.batch_size, cfg.infer.tiled, scale)
    centres = []
    for rgb, mask in zip(images, masks):
        labels = label_cells(mask[..., 0], *cell_settings(cfg.infer, scale))
        centre = central_cell(labels)
        centres.append((rgb, (labels == centre).astype(np.int32)) if centre else None)
    return centres


def compare(start, features, is_blast, cells_dir, start_file):
    """The start call's scores on every cell (it saw none of them) and the fitted call's across
    folds; the fitted one is kept unless the start's AUC is at least as high."""
    fitted = call_scores(is_blast, cross_validated(features, is_blast))
    facts = {"cells_dir": str(cells_dir), "segmentation_model": str(start_file),
             "fitted_cross_validated": fitted, "start": None, "kept": "fitted"}
    if start is not None:
        facts["start"] = call_scores(is_blast, start.probabilities(features), start.threshold)
        if facts["start"]["auc"] >= fitted["auc"]:
            facts["kept"] = "start"
    facts["about"] = {"cells": fitted["cells"], "blasts": fitted["blasts"],
                      "cells_dir": str(cells_dir), "cross_validated": fitted,
                      "median_diameter_px": median_diameter(features)}
    return facts


def median_diameter(features):
    """The median equivalent diameter, in pixels, of the cells a call is fitted on: the
    magnification the call expects (it reads cell size)."""
    sizes = np.asarray(features)[:, FEATURE_NAMES.index("log_diameter_px")]
    return round(float(np.exp(np.median(sizes))), 2)


def side_by_side(facts):
    """The start and fitted calls' scores as a small table."""
    rows = [("start (the model's own call)", facts["start"]),
            ("fitted, across folds", facts["fitted_cross_validated"])]
    lines = [f"{'':30s} {'AUC':>6s} {'balanced':>9s} {'sensitivity':>12s} {'specificity':>12s}"]
    for name, s in rows:
        lines.append(f"{name:30s} " + ("  (none)" if s is None else
                     f"{s['auc']:6.3f} {s['balanced_accuracy']:9.3f} {s['sensitivity']:12.3f} "
                     f"{s['specificity']:12.3f}"))
    return "\n".join(lines + [f"Kept: the {facts['kept']} call"])


def write_call(output, start_file, call, facts, log=print):
    """output holds the segmentation model (copied unless it is there already), its config, the
    call beside it and its scores; what was there before is kept in output/earlier-<time>/."""
    make_folder(output, "--output ")
    model = output / BEST_MODEL
    if model.exists() and not model.samefile(start_file):
        keep_earlier_model(output, log)
    elif blast_call_path(model).exists():
        keep_earlier_model(output, log, names=CALL_FILES, key=CALL_FILES[0])
    if not model.exists():
        shutil.copyfile(start_file, model)
        if start_file.with_suffix(".config").is_file():
            shutil.copyfile(start_file.with_suffix(".config"), model.with_suffix(".config"))
    write_text(output / CALL_FILES[1], json.dumps(facts, indent=2) + "\n")
    write_text(blast_call_path(model), call.to_json() + "\n")  # last: it says the rest is there
