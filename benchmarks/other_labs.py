"""Another lab's smears with expert outlines (python benchmarks/other_labs.py [--data] [--model]).

--data: images/NNN.* and masks/NNN.png (0, 128 cytoplasm, 255 nucleus), one white cell an image.
Per image, the infer script's cells (images as given) and the colour rule: found (the cell most on
the white cell has IoU >= 0.5 with it), Dice on whole cell and nucleus, false cells (touching no
white-cell pixel), count error |cells - 1|."""
import argparse

import numpy as np

from common import ROOT

import allseg.core.quiet_start  # noqa: F401, E402  (before TensorFlow starts)
from allseg.cells.instances import cell_settings, label_cells  # noqa: E402
from allseg.core.files import write_json, write_text  # noqa: E402
from allseg.data.images import list_images, read_rgb  # noqa: E402
from allseg.evaluate.scoring import confusion, dice  # noqa: E402
from allseg.infer.engines import load_predictor  # noqa: E402
from allseg.infer.predict import predict_masks, resampling  # noqa: E402
from allseg.model.shipped import load_for_model  # noqa: E402


def score(mask, truth, c):
    """One image's figures for a predicted mask against the expert's 0/128/255 outline."""
    cells, whole = label_cells(mask, *cell_settings(c)), truth > 0
    ids, overlap = np.unique(cells[whole & (cells > 0)], return_counts=True)
    best = cells == (ids[np.argmax(overlap)] if len(ids) else -1)
    return {"found": float(np.sum(best & whole) >= 0.5 * np.sum(best | whole) > 0),
            "dice_whole": dice(*confusion(mask, whole)[:3]),
            "dice_nucleus": dice(*confusion(mask, truth == 255)[:3]),
            "false_cells": float(len(set(np.unique(cells[cells > 0])) - set(ids))),
            "count_error": float(abs(int(cells.max()) - 1))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=ROOT.parent / "shared" / "data" / "wbc-cellavision")
    parser.add_argument("--model", default="pretrained")
    parser.add_argument("--cell-diameter", type=float, default=0.0,
                        help="[infer] cell_diameter (default 0: the images as given)")
    parser.add_argument("--tag", default="", help="suffix for the result files")
    args = parser.parse_args()
    cfg = load_for_model(ROOT / "train_eval_infer.config", args.model)
    files = list_images(f"{args.data}/images")
    c = cfg.infer
    c.cell_diameter = args.cell_diameter
    scale, why = resampling(cfg)
    print(why or "images as given")
    # the cells are counted at the model's scale, as the infer script counts them
    c.cell_min_area, c.cell_split_depth, c.cell_split_hole_px = cell_settings(c, scale)
    model = load_predictor(cfg)
    rows = {"model": [], "colour rule blue - green > 65": []}
    for path in files:
        rgb, truth = read_rgb(path), read_rgb(f"{args.data}/masks/{path.stem}.png")[..., 0]
        (mask,) = predict_masks(model, [rgb], cfg.model, cfg.train.batch_size, cfg.infer.tiled,
                                scale)
        for name, pred in zip(rows, (mask, (rgb[..., 2].astype(int) - rgb[..., 1]) > 65)):
            rows[name].append(score(pred, truth, cfg.infer))
    table = ["| method | images | found | Dice, whole cell | Dice, nucleus | false cells | "
             "count error |", "|---" * 7 + "|"]
    summary = {n: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for n, rs in rows.items()}
    for name, s in summary.items():
        table.append(f"| {name} | {len(rows[name])} | {s['found']:.2f} | {s['dice_whole']:.3f} | "
                     f"{s['dice_nucleus']:.3f} | {s['false_cells']:.2f} | {s['count_error']:.2f} |")
    print("\n".join(table))
    out = ROOT / "benchmarks" / "results" / ("other_labs_cellavision" + (
        f"_cell_diameter_{args.cell_diameter:g}" if args.cell_diameter else "") + args.tag)
    write_json(f"{out}.json", {"data": str(args.data), "model": str(args.model),
                               "cell_diameter": args.cell_diameter, "scale": scale,
                                    "summary": summary, "per_image": rows})
    write_text(f"{out}.md", "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
