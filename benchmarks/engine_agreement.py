"""Do the inference engines give Keras's answers on real data? Masks and scores, engine by engine.

Without RUN_DIR, the shipped model (pretrained/) on Early's 197 reference test images, split from
--data into --scratch; with it, the config and model of a benchmarks/real_early.py run on its
[eval] pairs. For each engine the evaluator scores the images (into <folder>/eval_<engine>/) and
every mask is compared pixel by pixel with Keras's. Prints one table; writes
benchmarks/results/engine_agreement.json.
"""
import copy
import time
from pathlib import Path

import numpy as np

from common import ROOT, parse, parser, reference_split, write_config

import allseg.core.quiet_start  # noqa: F401, E402  (before TensorFlow starts)
from allseg.core.config import load_config  # noqa: E402  (common puts the project on sys.path)
from allseg.core.files import write_json  # noqa: E402
from allseg.data.dataset import ALLDataset  # noqa: E402
from allseg.data.images import read_rgb  # noqa: E402
from allseg.evaluate.evaluation import evaluate  # noqa: E402
from allseg.infer.engines import load_predictor  # noqa: E402
from allseg.infer.predict import predict_masks  # noqa: E402
from allseg.model.shipped import load_for_model  # noqa: E402
from allseg.model.unet import load_trained_model  # noqa: E402

ENGINES = ("keras", "openvino", "litert")
SCORES = ("mean_dice", "pooled_dice", "mean_iou")
CELL_SCORES = ("f1", "panoptic_quality", "count_mae", "dice", "nsd_2px")


def main():
    p = parser(__doc__, scratch="engine_agreement", assets=False)
    p.add_argument("run_dir", type=Path, nargs="?", help="a benchmarks/real_early.py run")
    args = parse(p)
    folder = args.run_dir or args.scratch
    if args.run_dir:
        base, subject = load_config(args.run_dir / "config"), str(args.run_dir)
    else:
        all_dir = reference_split(args.data, args.scratch)
        config = write_config(ROOT / "train_eval_infer.config", folder / "config", folder, all_dir)
        base, subject = load_for_model(config, "pretrained"), "pretrained"
    model = load_trained_model(base)
    rgbs = [read_rgb(p.image) for p in ALLDataset.from_config(base, "eval").pairs]
    masks, rows = {}, []
    for engine in ENGINES:
        cfg = copy.deepcopy(base)
        cfg.infer.engine = engine
        cfg.train.eval_dir = str(folder / f"eval_{engine}")
        predictor = load_predictor(cfg, model)
        start = time.perf_counter()
        masks[engine] = predict_masks(predictor, rgbs, cfg.model, batch_size=cfg.train.batch_size)
        seconds = time.perf_counter() - start
        summary = evaluate(cfg, predictor)
        equal = sum(int(np.count_nonzero(a == b)) for a, b in zip(masks[engine], masks["keras"]))
        rows.append({"engine": engine, "images": len(rgbs), "predict_seconds": seconds,
                     "mask_pixels_equal_to_keras": equal / sum(m.size for m in masks["keras"]),
                     **{k: summary[k] for k in SCORES},
                     **{f"cell_{k}": summary["cells"][k] for k in CELL_SCORES}})
    keys = list(SCORES) + [f"cell_{k}" for k in CELL_SCORES]
    for row in rows:
        row["largest_score_difference_to_keras"] = max(abs(row[k] - rows[0][k]) for k in keys)
    print("| engine | mask pixels equal to Keras's | mean Dice | cell F1 | count error | "
          f"largest score difference to Keras | predict (s, {len(rgbs)} images, not a benchmark) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {100 * r['mask_pixels_equal_to_keras']:.4f}% | "
              f"{r['mean_dice']:.4f} | {r['cell_f1']:.4f} | {r['cell_count_mae']:.3f} | "
              f"{r['largest_score_difference_to_keras']:.2g} | {r['predict_seconds']:.1f} |")
    write_json(args.out / "engine_agreement.json", {"model": subject, "rows": rows})
    print(f"Wrote {args.out / 'engine_agreement.json'}")


if __name__ == "__main__":
    main()
