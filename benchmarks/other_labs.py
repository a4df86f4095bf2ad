"""Another lab's smears with expert outlines (python benchmarks/other_labs.py [--data] [--model]).

--data: images/NNN.* and masks/NNN.png (0, 128 cytoplasm, 255 nucleus), one white cell an image.
Per image, the infer script's cells (at the scale --cell-diameter gives, "auto" by default), the
colour rule's, and the expert's nucleus taken as a prediction: found (the cell most on the white
cell has IoU >= 0.5 with it), Dice on whole cell and nucleus, false cells (touching no white-cell
pixel), count error |cells - 1|."""
import cv2
import numpy as np

from common import (COLOUR_RULE, DATA, ROOT, blue_minus_green, caption, parse, parser,
                    write_pictures, write_results)

import allseg.core.quiet_start  # noqa: F401, E402  (before TensorFlow starts)
from allseg.cells.instances import cell_settings, label_cells  # noqa: E402
from allseg.data.images import list_images, read_rgb  # noqa: E402
from allseg.cells.scoring import mask_dice  # noqa: E402
from allseg.infer.engines import load_predictor  # noqa: E402
from allseg.infer.predict import predict_masks  # noqa: E402
from allseg.infer.scale import resampling, sample_evenly  # noqa: E402
from allseg.model.shipped import load_for_model  # noqa: E402


GALLERY = 8  # crops in the gallery, spread through the folder


def score(mask, truth, c):
    """One image's figures for a predicted mask against the expert's 0/128/255 outline."""
    cells, whole = label_cells(mask, *cell_settings(c)), truth > 0
    ids, overlap = np.unique(cells[whole & (cells > 0)], return_counts=True)
    best = cells == (ids[np.argmax(overlap)] if len(ids) else -1)
    return {"found": float(np.sum(best & whole) >= 0.5 * np.sum(best | whole) > 0),
            "dice_whole": mask_dice(mask, whole),
            "dice_nucleus": mask_dice(mask, truth == 255),
            "false_cells": float(len(set(np.unique(cells[cells > 0])) - set(ids))),
            "count_error": float(abs(int(cells.max()) - 1))}


def gallery_tile(rgb, mask, truth, c, name):
    """The expert's whole cell dark grey and nucleus light grey, the model's cells outlined:
    the one most on the white cell white, the others cyan. The smear itself is left out, so the
    picture holds no copy of the dataset's image (the private tile puts it in front)."""
    cells, view = label_cells(mask, *cell_settings(c)), np.zeros(rgb.shape, np.uint8)
    view[truth > 0], view[truth == 255] = (70, 70, 70), (150, 150, 150)
    ids, overlap = np.unique(cells[(truth > 0) & (cells > 0)], return_counts=True)
    best = ids[np.argmax(overlap)] if len(ids) else -1
    for cell in range(1, int(cells.max()) + 1):
        contours, _ = cv2.findContours((cells == cell).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        colour = (255, 255, 255) if cell == best else (0, 220, 255)
        cv2.drawContours(view, contours, -1, colour, 2)
    return rgb, caption(view, f"{name}: {cells.max()} cell(s)", 0.45, 16)


def expert_diameters(data, files):
    """The median equivalent diameter of the expert's whole cells (mask > 0) and nuclei (255)."""
    truths = [read_rgb(f"{data}/masks/{path.stem}.png")[..., 0] for path in files]
    return {name: float(np.median([np.sqrt(4 * np.count_nonzero(pick(t)) / np.pi)
                                   for t in truths]))
            for name, pick in (("whole", lambda t: t > 0), ("nucleus", lambda t: t == 255))}


def result_suffix(cell_diameter):
    """"" for the default, auto; _as_given for 0; _cell_diameter_N for a size given by hand."""
    if cell_diameter == "auto":
        return ""
    return f"_cell_diameter_{cell_diameter:g}" if cell_diameter else "_as_given"


def main():
    p = parser(__doc__, data=DATA / "wbc-cellavision", assets=False)
    p.add_argument("--model", default="pretrained")
    p.add_argument("--cell-diameter", type=lambda text: text if text == "auto" else float(text),
                   default="auto", help='"auto" (the default), or pixels (0: the images as given)')
    p.add_argument("--tag", default="", help="suffix for the result files")
    p.add_argument("--gallery", action="store_true", help=f"draw {GALLERY} crops to asset/"
                   "other_labs_gallery.png (outlines only; with the crops in bench_runs/)")
    args = parse(p)
    cfg = load_for_model(ROOT / "train_eval_infer.config", args.model)
    files = list_images(f"{args.data}/images")
    c = cfg.infer
    c.cell_diameter = args.cell_diameter
    model = load_predictor(cfg)
    scale, why = resampling(cfg, model, files)
    print(why or "images as given")
    truth_sizes = expert_diameters(args.data, files)
    read = cfg.model.cell_diameter_px / scale
    print(f"Cells taken as {read:.3g} px across; the expert's whole cells are "
          f"{truth_sizes['whole']:.3g} px (median), their nuclei {truth_sizes['nucleus']:.3g} px")
    # the cells are counted at the model's scale, as the infer script counts them
    c.cell_min_area, c.cell_split_depth, c.cell_split_hole_px = cell_settings(c, scale)
    # the third row is the truth's own nucleus: what a model that outlines nuclei perfectly, as
    # the Kaggle truth teaches for mature cells, would score against the whole cell
    rows = {"model": [], "colour rule blue - green > 65": [], "the expert's nucleus": []}
    tiles, show = [], {path.stem for path in sample_evenly(files, GALLERY)}
    for path in files:
        rgb, truth = read_rgb(path), read_rgb(f"{args.data}/masks/{path.stem}.png")[..., 0]
        (mask,) = predict_masks(model, [rgb], cfg.model, cfg.train.batch_size, cfg.infer.tiled,
                                scale)
        for name, pred in zip(rows, (mask, blue_minus_green(rgb) > COLOUR_RULE, truth == 255)):
            rows[name].append(score(pred, truth, cfg.infer))
        if args.gallery and path.stem in show:
            tiles.append(gallery_tile(rgb, mask, truth, cfg.infer, path.stem))
    write_pictures(tiles, ROOT / "asset" / "other_labs_gallery.png",
                   ROOT / "bench_runs" / "other_labs_gallery_private.png", axes=(1, 1), front=0)
    table = ["| method | images | found | Dice, whole cell | Dice, nucleus | false cells | "
             "count error |", "|---" * 7 + "|"]
    summary = {n: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for n, rs in rows.items()}
    for name, s in summary.items():
        table.append(f"| {name} | {len(rows[name])} | {s['found']:.2f} | {s['dice_whole']:.3f} | "
                     f"{s['dice_nucleus']:.3f} | {s['false_cells']:.2f} | {s['count_error']:.2f} |")
    print("\n".join(table))
    out = args.out / ("other_labs_cellavision" + result_suffix(args.cell_diameter) + args.tag)
    write_results(out, {"data": str(args.data), "model": str(args.model),
                        "cell_diameter": args.cell_diameter, "scale": scale,
                        "cells_taken_as_px": read, "expert_median_px": truth_sizes,
                        "summary": summary, "per_image": rows}, "\n".join(table))


if __name__ == "__main__":
    main()
