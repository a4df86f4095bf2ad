"""Scores the best model on the [eval] pairs, each image at its own size, into summary.json."""
from pathlib import Path

import keras
import numpy as np

from allseg.dataset import ALLDataset
from allseg.engines import load_predictor
from allseg.files import write_json
from allseg.images import read_mask
from allseg.pairing import describe
from allseg.predict import THRESHOLD, predict_probabilities, to_mask
from allseg.scoring import score_image, summarize

SUMMARY = "summary.json"


def evaluate(cfg, model=None):
    """Returns the summary dict and writes it to <eval_dir>/summary.json."""
    model = model or load_predictor(cfg)
    data = ALLDataset.from_config(cfg, "eval")
    print(f"Evaluating {len(data)} pairs in {describe(cfg.eval.image_datapath, cfg.eval.category)}")
    batch_size = cfg.train.batch_size
    ds = data.dataset(batch_size=batch_size)

    loss_sum, correct, pixels, rows = 0.0, 0, 0, []
    progress = keras.utils.Progbar(len(data), unit_name="image")
    pairs = iter(data.pairs)
    for images, masks in ds:
        probs = predict_probabilities(model, images, cfg.model.tta_flips)
        masks = masks.numpy()[..., 0]
        n = len(probs)
        # The loss and accuracy the seed printed: at the model's size, over the batch.
        loss_sum += float(model.loss(masks[..., None], probs[..., None])) * n
        correct += int(np.count_nonzero((probs > THRESHOLD) == (masks > 0.5)))
        pixels += probs.size
        for prob in probs:
            pair = next(pairs)
            truth = read_mask(pair.mask)
            pred = to_mask(prob, *truth.shape, min_area=cfg.model.min_area)
            rows.append({**score_image(pair.image.name, pred, truth), "category": pair.category})
        progress.add(n)

    summary = summarize(rows, loss=loss_sum / len(data), binary_accuracy=correct / pixels)
    summary["per_category"] = {
        name: {k: v for k, v in summarize([r for r in rows if r["category"] == name]).items()
               if k not in ("per_image", "loss", "binary_accuracy")}
        for name in sorted({r["category"] for r in rows})}
    summary["model"] = str(Path(cfg.train.model_dir) / "best_model.keras")
    summary["config"] = str(cfg.path)
    Path(cfg.train.eval_dir).mkdir(parents=True, exist_ok=True)
    write_json(Path(cfg.train.eval_dir) / SUMMARY, summary)
    return summary
