"""Scores the best model on the [eval] pairs, each image at its own size, into summary.json."""
from pathlib import Path

import keras
import numpy as np

from allseg.cells.instances import cell_settings
from allseg.cells.matching import nc_errors
from allseg.core.files import write_json
from allseg.data.dataset import ALLDataset
from allseg.data.images import read_mask, read_rgb
from allseg.data.lab_masks import read_cell_and_nucleus
from allseg.data.pairing import describe
from allseg.data.truth_audit import trusted_pairs
from allseg.evaluate.cell_scoring import score_cells, summarize_cells
from allseg.evaluate.pictures import histograms, worst_gallery
from allseg.evaluate.scoring import confusion, dice, score_image, summarize
from allseg.infer.engines import load_predictor
from allseg.infer.predict import (needs_tiles, predict_cells, predict_masks,
                                  predict_probabilities, to_mask)
from allseg.infer.scale import resampling
from allseg.model.shipped import trained_model_path

SUMMARY = "summary.json"
HISTOGRAMS = "eval_histograms.png"
WORST = "eval_worst_cells.png"
WORST_COUNT = 6


def evaluate(cfg, model=None):
    """Returns the summary dict and writes it to <eval_dir>/summary.json."""
    model = model or load_predictor(cfg)
    data = ALLDataset.from_config(cfg, "eval")
    if cfg.eval.skip_flagged_truth:
        data.pairs = trusted_pairs(data.pairs, "evaluation")
    print(f"Evaluating {len(data)} pairs in {describe(cfg.eval.image_datapath, cfg.eval.category)}")
    batch_size = cfg.train.batch_size
    ds = data.dataset(batch_size=batch_size)

    c, nuclei = cfg.infer, cfg.model.num_classes == 2
    scale, why = resampling(cfg, model, [pair.image for pair in data.pairs])
    if why:
        print(why)
    cells_at = cell_settings(c, scale)
    loss_sum, correct, pixels, rows, worst = 0.0, 0, 0, [], []
    progress = keras.utils.Progbar(len(data), unit_name="image")
    pairs = iter(data.pairs)
    for images, masks in ds:
        probs = predict_probabilities(model, images, cfg.model.tta_flips)
        masks = masks.numpy()[..., 0]
        n = len(probs)
        # The loss and accuracy the seed printed: at the model's size, over the batch.
        loss_sum += float(model.loss(masks[..., None], probs[..., None])) * n
        correct += int(np.count_nonzero((probs > cfg.model.threshold) == (masks > 0.5)))
        pixels += probs.size
        for prob in probs:
            pair = next(pairs)
            truth = read_mask(pair.mask)
            if nuclei:  # both channels, as the infer script writes them
                (both,) = predict_cells(model, [read_rgb(pair.image)], cfg.model, batch_size,
                                        c.tiled, scale)
                pred = both[..., 0]
            elif not needs_tiles(truth, cfg.model, c.tiled, scale):
                pred = to_mask(prob, *truth.shape, cfg.model.min_area, cfg.model.threshold)
            else:  # at its own resolution or resampled to the model's scale, as the infer script
                (pred,) = predict_masks(model, [read_rgb(pair.image)], cfg.model, batch_size,
                                        c.tiled, scale)
            cells, true_labels, pred_labels, match = score_cells(pred, truth, *cells_at)
            rows.append({**score_image(pair.image.name, pred, truth), "category": pair.category,
                         "cells": cells})
            if nuclei:
                true_nucleus = read_cell_and_nucleus(pair.image, pair.mask, truth.shape)[..., 1]
                rows[-1]["nucleus"] = score_nuclei(true_labels, true_nucleus, pred_labels,
                                                   both[..., 1], match)
            # the few lowest cell F1s so far, with what it takes to draw them
            worst.append((cells["f1"], len(rows), pair, true_labels, pred_labels, match))
            worst = sorted(worst, key=lambda w: w[:2])[:WORST_COUNT]
        progress.add(n)

    def cell_summary(some):
        return summarize_cells([r["cells"] for r in some], *cells_at)

    categories = sorted({r["category"] for r in rows})
    summary = summarize(rows, loss=loss_sum / len(data), binary_accuracy=correct / pixels)
    summary["cells"] = {**cell_summary(rows), "per_category": {
        name: cell_summary([r for r in rows if r["category"] == name]) for name in categories}}
    summary["per_category"] = {
        name: {k: v for k, v in summarize([r for r in rows if r["category"] == name]).items()
               if k not in ("per_image", "loss", "binary_accuracy")}
        for name in categories}
    if nuclei:
        summary["nuclei"] = summarize_nuclei([r["nucleus"] for r in rows])
    summary["model"] = str(trained_model_path(cfg))
    summary["config"] = str(cfg.path)
    eval_dir = Path(cfg.train.eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    write_json(eval_dir / SUMMARY, summary)
    histograms(rows, eval_dir / HISTOGRAMS)
    worst_gallery([(pair.image.name, read_rgb(pair.image), t, p, m, rows[n - 1]["cells"])
                   for _, n, pair, t, p, m in worst], eval_dir / WORST)
    return summary


def score_nuclei(true_labels, true_nucleus, pred_labels, pred_nucleus, match):
    """One image's nucleus scores: pixel counts and Dice, and the N:C error of each matched
    cell (the evaluator's one-to-one matching of whole cells)."""
    tp, fp, fn, _ = confusion(pred_nucleus, true_nucleus)
    return {"dice": dice(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn,
            "nc_errors": nc_errors(true_labels, true_nucleus, pred_labels, pred_nucleus,
                                   match["pairs"])}


def summarize_nuclei(rows):
    """Mean and pooled nucleus Dice over the images, and the mean N:C error over every matched
    cell (None without any), with the counts they come from."""
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    errors = [e for r in rows for e in r["nc_errors"]]
    return {"mean_dice": float(np.mean([r["dice"] for r in rows])), "pooled_dice": dice(tp, fp, fn),
            "nc_error_mean": float(np.mean(errors)) if errors else None,
            "matched_cells": len(errors)}
