"""Blast or normal, cell by cell: what the Kaggle labels can teach and what they cannot.

Each Kaggle image labels its cells: Benign (hematogones) normal, Early, Pre and Pro blast. The
shipped model finds the cells of the train rows of --data, split 80/20 by image (seeded); a
classifier fitted on the first part's cells is scored on the second's: on colour alone (the
shortcut: each class was photographed apart) and on allseg/cells/cell_features.py's stain-free
numbers, with and without the cell's size. Controls: the held-out images recoloured to the other
class's colour statistics (Reinhard et al. 2001, in Lab) and in grey. --cnmc: another lab's
cells (blast/, normal/; UID_<subject>_...), zero-shot and fitted on 20 a class from 10 subjects
a class, scored on the other subjects'."""
import shutil
import time

import cv2
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from common import DATA, ROOT, parse, parser, write_results

import allseg.core.quiet_start  # noqa: F401, E402  (before TensorFlow starts)
from allseg.cells.blast_call import blast_call_path  # noqa: E402
from allseg.cells.cell_features import cell_features  # noqa: E402
from allseg.cells.instances import cell_settings, label_cells  # noqa: E402
from allseg.data.images import read_rgb  # noqa: E402
from allseg.data.labelled_cells import cut_out_cell, read_labelled_cells  # noqa: E402
from allseg.data.splitting import read_split_csv  # noqa: E402
from allseg.core.cli import DEFAULT_CONFIG  # noqa: E402
from allseg.core.files import write_text  # noqa: E402
from allseg.infer.engines import load_predictor  # noqa: E402
from allseg.infer.inference import infer, use_command_line  # noqa: E402
from allseg.infer.predict import predict_masks  # noqa: E402
from allseg.model.shipped import SHIPPED_MODEL, load_for_model  # noqa: E402
from allseg.train.blast_fit import fit_blast_call  # noqa: E402

SEED, REPEATS, SHOTS_SUBJECTS, COST_IMAGES = 0, 20, 10, 200


def kaggle_images(data):
    """(path, is_blast) for the train rows of data/split.csv."""
    names = [name for name, part in read_split_csv(data / "split.csv").items() if part == "train"]
    return [(next((data / "Original").glob(f"*/{name}")), "Benign" not in name) for name in names]


def find_cells(images, cfg, model):
    """Each image's RGB and its cells' label image, as the infer script finds them."""
    rgbs = [(read_rgb(path), blast) for path, blast in images]
    return [(rgb, label_cells(predict_masks(model, [rgb], cfg.model, cfg.train.batch_size,
                                            cfg.infer.tiled)[0], *cell_settings(cfg.infer)), blast)
            for rgb, blast in rgbs]


def colour_features(rgb, labels):
    """The colour-only shortcut: each cell's 10th, 50th and 90th RGB percentiles."""
    return np.array([np.percentile(rgb[labels == i], [10, 50, 90], axis=0).ravel()
                     for i in range(1, labels.max() + 1)], np.float32).reshape(-1, 9)


def table(found, describe):
    """Cells' features (describe(rgb, labels)), labels and image index, stacked."""
    parts = [(describe(rgb, labels), blast, i) for i, (rgb, labels, blast) in enumerate(found)]
    return (np.concatenate([x for x, _, _ in parts]),
            np.concatenate([[b] * len(x) for x, b, _ in parts]),
            np.concatenate([[i] * len(x) for x, _, i in parts]))


def lab_stats(rgb):
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2LAB).reshape(-1, 3)
    return lab.mean(0), lab.std(0)


def recolour(rgb, mean, std):
    """Reinhard's colour transfer: each Lab channel moved to the target's mean and spread."""
    own_mean, own_std = lab_stats(rgb)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    lab = (lab - own_mean) / (own_std + 1e-6) * std + mean
    return (np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0, 1) * 255).astype(np.uint8)


def controls(found, train):
    """The held-out images recoloured to the other class's mean Lab statistics, and in grey."""
    stats = {b: np.mean([lab_stats(rgb) for rgb, _, blast in train if blast == b], axis=0)
             for b in (False, True)}
    return {"recoloured": [(recolour(rgb, *stats[not b]), labels, b) for rgb, labels, b in found],
            "grey": [(cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB),
                      labels, b) for rgb, labels, b in found]}


def scores(y, p, images=None):
    out = {"cells": int(len(y)), "accuracy": float(((p > 0.5) == y).mean()),
           "balanced_accuracy": float(balanced_accuracy_score(y, p > 0.5)),
           "auc": float(roc_auc_score(y, p))}
    if images is not None:  # the majority call of each image's cells against its label
        calls = [(np.mean(p[images == i] > 0.5) > 0.5, y[images == i][0])
                 for i in np.unique(images)]
        out["image_majority"] = float(np.mean([a == b for a, b in calls]))
    return out


def classifiers():
    """{name: fit(x, y) -> the blast probabilities of other cells}: the call
    TensorflowUNetALLTrainer.py --cells fits (allseg/train/blast_fit.py), and boosted trees: what
    a far more flexible classifier reads."""
    def boosted_trees(x, y):
        trees = HistGradientBoostingClassifier(class_weight="balanced", random_state=SEED).fit(x, y)
        return lambda cells: trees.predict_proba(cells)[:, 1]

    return {"the project's call": lambda x, y: fit_blast_call(x, y).probabilities,
            "boosted trees": boosted_trees}


def cell_features_only(rgb, labels, columns=slice(None)):
    return cell_features(rgb, labels)[1][:, columns]


NO_SIZE = slice(0, -1)  # every number but the cell's size (the last)
INPUTS = {"colour only": colour_features, "shape and texture": cell_features_only,
          "shape and texture, no size": lambda *image: cell_features_only(*image, NO_SIZE)}


def kaggle(data, cfg, model):
    """Rows of held-out scores for each input, classifier and control; and the shape-and-texture
    table of every image's cells (the zero-shot classifier for another lab fits on it)."""
    found = find_cells(kaggle_images(data), cfg, model)
    held = np.random.default_rng(SEED).permutation(len(found))[:len(found) // 5]
    train = [f for i, f in enumerate(found) if i not in set(held)]
    variants = controls([found[i] for i in held], train)
    rows, tables = [], {}
    for input_name, describe in INPUTS.items():
        tables[input_name] = x, y, image = table(found, describe)
        fit_on, tested = ~np.isin(image, held), np.isin(image, held)
        shown = {"plain": (x[tested], y[tested], image[tested]),
                 **{k: table(v, describe) for k, v in variants.items()}}
        for name, fit in classifiers().items():
            probabilities = fit(x[fit_on], y[fit_on])
            for variant, (tx, ty, ti) in shown.items():
                rows.append({"input": input_name, "classifier": name, "images": variant,
                             **scores(ty, probabilities(tx), ti)})
                print(rows[-1])
    return rows, tables["shape and texture"]


def cnmc_cells(folder):
    """Features of each image's cut-out cell (as --cells takes it), its label and subject."""
    cells = read_labelled_cells(folder)
    images = (read_rgb(c.path) for c in cells)
    x = [cell_features_only(rgb, cut_out_cell(rgb))[0] for rgb in images]
    return (np.array(x), np.array([c.is_blast for c in cells]),
            np.array([c.path.stem.split("_")[1] for c in cells]))


def cnmc(folder, kaggle_x, kaggle_y):
    """cnmc_rows with every number, and without the cell's size."""
    x, y, subjects = cnmc_cells(folder)
    return [{"input": name, **row} for name, cut in (("all", slice(None)), ("no size", NO_SIZE))
            for row in cnmc_rows(x[:, cut], y, subjects, kaggle_x[:, cut], kaggle_y)]


def cnmc_rows(x, y, subjects, kaggle_x, kaggle_y):
    """Zero-shot from Kaggle, and k-shot fits on 10 subjects per class (REPEATS draws)."""
    zero_p = fit_blast_call(kaggle_x, kaggle_y).probabilities(x)
    rows = [{"setting": "zero-shot: the call fitted on the Kaggle cells", **scores(y, zero_p)}]
    rng, fits = np.random.default_rng(SEED), []
    for _ in range(REPEATS):
        chosen = set()
        for blast in (True, False):
            own = np.unique(subjects[y == blast])
            chosen |= set(rng.choice(own, SHOTS_SUBJECTS, replace=False).tolist())
        train = np.isin(subjects, list(chosen))
        began = time.perf_counter()
        p = fit_blast_call(x[train], y[train]).probabilities(x[~train])
        fits.append({**scores(y[~train], p), "fit_seconds": time.perf_counter() - began,
                     "zero_shot_auc": float(roc_auc_score(y[~train], zero_p[~train]))})
    rows.append({"setting": f"fitted on {2 * SHOTS_SUBJECTS} cells a class ({SHOTS_SUBJECTS} "
                            f"subjects), mean of {REPEATS} draws",
                 **{k: float(np.mean([f[k] for f in fits])) for k in fits[0]},
                 "auc_sd": float(np.std([f["auc"] for f in fits]))})
    return rows


def inference_cost(images, call, scratch, runs=5):
    """Wall seconds of the infer script's work on the images without and with the call beside
    a copy of the shipped model (the best of runs each, alternating, after a warm-up round)."""
    folder, model = scratch / "images", scratch / "model" / "leukemia_all.keras"
    for path in (folder, model.parent):
        path.mkdir(parents=True, exist_ok=True)
    for path in images:
        if not (folder / path.name).exists():
            (folder / path.name).symlink_to(path)
    for suffix in (".keras", ".config"):
        shutil.copyfile(SHIPPED_MODEL.with_suffix(suffix), model.with_suffix(suffix))
    cfg = use_command_line(load_for_model(DEFAULT_CONFIG, model), folder, scratch / "out")
    seconds = {False: [], True: []}
    for _ in range(runs + 1):  # the first round warms up: the engine's conversion is cached
        for with_call in (False, True):
            blast_call_path(model).unlink(missing_ok=True)
            if with_call:
                write_text(blast_call_path(model), call.to_json())
            began = time.perf_counter()
            infer(cfg)
            seconds[with_call].append(time.perf_counter() - began)
    return {"images": len(images), "without_call_s": min(seconds[False][1:]),
            "with_call_s": min(seconds[True][1:])}


def markdown(rows, cnmc_rows, seconds_per_cell):
    text = ["| input | classifier | held-out images | cells | accuracy | balanced | AUC "
            "| image majority |", "|---|---|---|---|---|---|---|---|"]
    text += [f"| {r['input']} | {r['classifier']} | {r['images']} | {r['cells']} "
             f"| {r['accuracy']:.3f} | {r['balanced_accuracy']:.3f} | {r['auc']:.3f} "
             f"| {r['image_majority']:.3f} |" for r in rows]
    text += ["", "| another lab (C-NMC sample) | input | cells | balanced | AUC "
             "| zero-shot AUC, same cells |", "|---|---|---|---|---|---|"]
    text += [f"| {r['setting']} | {r['input']} | {r['cells']:.0f} | {r['balanced_accuracy']:.3f} "
             f"| {r['auc']:.3f} | {r.get('zero_shot_auc', r['auc']):.3f} |" for r in cnmc_rows]
    return "\n".join(text + ["", f"Shape and texture: {1000 * seconds_per_cell:.1f} ms a cell."])


def main():
    p = parser(__doc__, data=DATA / "leukemia-all", scratch="blasts", assets=False)
    p.add_argument("--cnmc", type=type(DATA), default=DATA / "cnmc-sample")
    args = parse(p)
    cfg = load_for_model(ROOT / "train_eval_infer.config", "pretrained")
    model = load_predictor(cfg)
    rows, (all_x, all_y, _) = kaggle(args.data, cfg, model)
    sample, began = find_cells(kaggle_images(args.data)[:50], cfg, model), time.perf_counter()
    cells = sum(len(cell_features_only(rgb, labels)) for rgb, labels, _ in sample)
    per_cell = (time.perf_counter() - began) / max(cells, 1)
    cnmc_rows = cnmc(args.cnmc, all_x, all_y) if args.cnmc.is_dir() else []
    cost = inference_cost([p for p, _ in kaggle_images(args.data)[:COST_IMAGES]],
                          fit_blast_call(all_x, all_y), args.scratch)
    text = markdown(rows, cnmc_rows, per_cell) + (
        f"\nThe infer script on {cost['images']} Kaggle images: {cost['without_call_s']:.1f} s "
        f"without the call, {cost['with_call_s']:.1f} s with it "
        f"({cost['with_call_s'] / cost['without_call_s']:.2f}x).")
    print(text)
    write_results(args.out / "blasts", {"kaggle": rows, "cnmc": cnmc_rows, "inference": cost,
                                        "seconds_per_cell": per_cell}, text)


if __name__ == "__main__":
    main()
