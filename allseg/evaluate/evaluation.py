"""Scores the best model on the [eval] pairs, each image at its own size, into summary.json."""
from pathlib import Path

import keras
import numpy as np

from allseg.cells.instances import cell_settings
from allseg.cells.scoring import score_image, summarize, summarize_cells, summarize_images
from allseg.core.files import write_json
from allseg.data.dataset import ALLDataset
from allseg.data.images import read_mask, read_rgb
from allseg.data.lab_masks import read_cell_and_nucleus
from allseg.data.pairing import describe
from allseg.data.truth_audit import trusted_pairs
from allseg.evaluate.pictures import histograms, worst_gallery
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
    scale, why = resampling(cfg, model, [pair.image for pair in data.pairs])
    if why:
        print(why)
    cell_keys = cell_settings(cfg.infer, scale)
    rows, worst, loss_sum, correct, pixels = [], [], 0.0, 0, 0
    progress = keras.utils.Progbar(len(data), unit_name="image")
    pairs = iter(data.pairs)
    for images, masks in data.dataset(batch_size=cfg.train.batch_size):
        probs = predict_probabilities(model, images, cfg.model.tta_flips)
        masks = masks.numpy()[..., 0]
        # The loss and accuracy the seed printed: at the model's size, over the batch.
        loss_sum += float(model.loss(masks[..., None], probs[..., None])) * len(probs)
        correct += int(np.count_nonzero((probs > cfg.model.threshold) == (masks > 0.5)))
        pixels += probs.size
        for prob in probs:
            pair = next(pairs)
            row, drawn = score_pair(model, cfg, pair, prob, scale, cell_keys)
            rows.append(row)
            # the few lowest cell F1s so far, with what it takes to draw them
            worst = sorted(worst + [(row["cells"]["f1"], len(rows), pair, *drawn)],
                           key=lambda w: w[:2])[:WORST_COUNT]
        progress.add(len(probs))
    summary = summarize_evaluation(rows, cell_keys, loss_sum / len(data), correct / pixels, cfg)
    write_evaluation(cfg, summary, rows, worst)
    return summary


def predicted_channels(model, cfg, pair, prob, truth, scale):
    """(whole-cell mask, nucleus mask or None) of one pair, as the infer script makes them."""
    c = cfg.infer
    if cfg.model.num_classes == 2:  # both channels, as the infer script writes them
        (both,) = predict_cells(model, [read_rgb(pair.image)], cfg.model, cfg.train.batch_size,
                                c.tiled, scale)
        return both[..., 0], both[..., 1]
    if not needs_tiles(truth, cfg.model, c.tiled, scale):
        return to_mask(prob, *truth.shape, cfg.model.min_area, cfg.model.threshold), None
    # at its own resolution or resampled to the model's scale, as the infer script
    (pred,) = predict_masks(model, [read_rgb(pair.image)], cfg.model, cfg.train.batch_size,
                            c.tiled, scale)
    return pred, None


def score_pair(model, cfg, pair, prob, scale, cell_keys):
    """(summary row, (true labels, predicted labels, match)) of one pair, scored at its own size."""
    truth = read_mask(pair.mask)
    pred, pred_nucleus = predicted_channels(model, cfg, pair, prob, truth, scale)
    true_nucleus = (None if pred_nucleus is None else
                    read_cell_and_nucleus(pair.image, pair.mask, truth.shape)[..., 1])
    row, true_labels, pred_labels, match = score_image(
        pair.image.name, pred, truth, cell_keys, pred_nucleus=pred_nucleus,
        true_nucleus=true_nucleus)
    return {**row, "category": pair.category}, (true_labels, pred_labels, match)


def summarize_evaluation(rows, cell_keys, loss, binary_accuracy, cfg):
    """summary.json: every image pooled, then each category's pixel and cell scores."""
    summary = summarize_images(rows, cell_keys, loss, binary_accuracy)
    categories = sorted({r["category"] for r in rows})
    summary["cells"]["per_category"] = {
        name: summarize_cells([r["cells"] for r in rows if r["category"] == name], *cell_keys)
        for name in categories}
    summary["per_category"] = {
        name: {k: v for k, v in summarize([r for r in rows if r["category"] == name]).items()
               if k not in ("per_image", "loss", "binary_accuracy")}
        for name in categories}
    summary["model"] = str(trained_model_path(cfg))
    summary["config"] = str(cfg.path)
    return summary


def write_evaluation(cfg, summary, rows, worst):
    """summary.json, the histograms and the gallery of the worst images' cells in eval_dir."""
    eval_dir = Path(cfg.train.eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    write_json(eval_dir / SUMMARY, summary)
    histograms(rows, eval_dir / HISTOGRAMS)
    worst_gallery([(pair.image.name, read_rgb(pair.image), t, p, m, rows[n - 1]["cells"])
                   for _, n, pair, t, p, m in worst], eval_dir / WORST)
