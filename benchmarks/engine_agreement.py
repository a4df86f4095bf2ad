"""Do the inference engines give Keras's answers on real data? Masks and scores, engine by engine.

    python benchmarks/engine_agreement.py RUN_DIR

RUN_DIR is a benchmarks/real_early.py run (its config and trained model). For each engine the
evaluator scores the [eval] pairs (the 197 Early reference test images) into RUN_DIR/eval_<engine>/,
and the masks of every image are compared pixel by pixel with Keras's. Prints one table; writes
benchmarks/results/engine_agreement.json.
"""
import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from common import ROOT

from allseg.core.files import write_text  # noqa: E402  (common puts the project on sys.path)

ENGINES = ("keras", "openvino", "litert")
SCORES = ("mean_dice", "pooled_dice", "mean_iou")
CELL_SCORES = ("f1", "panoptic_quality", "count_mae", "dice", "nsd_2px")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "engine_agreement.json")
    args = parser.parse_args()

    import allseg.core.quiet_start  # noqa: F401
    from allseg.core.config import load_config
    from allseg.data.dataset import ALLDataset
    from allseg.infer.engines import load_predictor
    from allseg.evaluate.evaluation import evaluate
    from allseg.data.images import read_rgb
    from allseg.infer.predict import predict_masks
    from allseg.model.unet import load_trained_model

    base = load_config(args.run_dir / "config")
    model = load_trained_model(base)
    rgbs = [read_rgb(p.image) for p in ALLDataset.from_config(base, "eval").pairs]
    masks, rows = {}, []
    for engine in ENGINES:
        cfg = copy.deepcopy(base)
        cfg.infer.engine = engine
        cfg.train.eval_dir = str(args.run_dir / f"eval_{engine}")
        predictor = load_predictor(cfg, model)
        start = time.perf_counter()
        masks[engine] = predict_masks(predictor, rgbs, cfg.model, batch_size=cfg.train.batch_size)
        seconds = time.perf_counter() - start
        summary = evaluate(cfg, predictor)
        equal = sum(int(np.count_nonzero(a == b)) for a, b in zip(masks[engine], masks["keras"]))
        total = sum(m.size for m in masks["keras"])
        rows.append({"engine": engine, "mask_pixels_equal_to_keras": equal / total,
                     "images": len(rgbs), "predict_seconds": seconds,
                     **{k: summary[k] for k in SCORES},
                     **{f"cell_{k}": summary["cells"][k] for k in CELL_SCORES}})
    keras_row = rows[0]
    keys = list(SCORES) + [f"cell_{k}" for k in CELL_SCORES]
    for row in rows:
        row["largest_score_difference_to_keras"] = max(abs(row[k] - keras_row[k]) for k in keys)
    print("| engine | mask pixels equal to Keras's | mean Dice | cell F1 | count error | "
          "largest score difference to Keras | predict (s, 197 images, not a benchmark) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {100 * r['mask_pixels_equal_to_keras']:.4f}% | {r['mean_dice']:.4f} "
              f"| {r['cell_f1']:.4f} | {r['cell_count_mae']:.3f} | "
              f"{r['largest_score_difference_to_keras']:.2g} | {r['predict_seconds']:.1f} |")
    write_text(args.out, json.dumps({"run": str(args.run_dir), "rows": rows}, indent=2) + "\n")
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
