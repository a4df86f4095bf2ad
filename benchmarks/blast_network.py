"""A small network of its own on the cell crops, against the project's 23-number call.

The question: does a network that sees each cell's pixels read blasts better than the numbers of
allseg/cells/cell_features.py, on the Kaggle labels and on another lab's cells? The shipped model
finds the cells of the train rows of --data, split 80/20 by image exactly as benchmarks/blasts.py
splits them. Each cell becomes a 48 px crop around its centre at the image's own scale: optical
density standardised by the cell's own mean and spread (no colour, no stain strength), and the
cell's mask. A small convolutional network (about 70k weights, flips and rotations) is trained on
the first part's cells and scored on the held-out images as taken, recoloured and in grey (the
controls of benchmarks/blasts.py). --cnmc: another lab's cut-out cells, brought to the Kaggle
cells' median size; the network's call zero-shot, and the project's fit (20 cells a class, as
benchmarks/blasts.py draws them) on the network's 64 learned numbers and the cell's size."""
import time

import cv2
import numpy as np

from blasts import SEED, cnmc_rows, controls, find_cells, kaggle_images, scores, table
from common import DATA, ROOT, parse, parser, write_results

import keras  # noqa: E402  (after blasts.py has quietened TensorFlow's start)
from allseg.data.images import read_rgb  # noqa: E402
from allseg.data.labelled_cells import cut_out_cell, read_labelled_cells  # noqa: E402
from allseg.infer.engines import load_predictor  # noqa: E402
from allseg.model.shipped import load_for_model  # noqa: E402

SIDE, EPOCHS, BATCH = 48, 10, 128


def crops(rgb, labels):
    """(cells, SIDE, SIDE, 2): each cell's standardised optical density and its mask, centred."""
    density = np.pad(-np.log((rgb.astype(np.float32) + 1) / 256).sum(-1), SIDE, mode="reflect")
    padded, out = np.pad(labels, SIDE), []
    for i in range(1, labels.max() + 1):
        ys, xs = np.nonzero(padded == i)
        y0, x0 = int(round(ys.mean())) - SIDE // 2, int(round(xs.mean())) - SIDE // 2
        window = np.s_[y0:y0 + SIDE, x0:x0 + SIDE]
        mask, values = padded[window] == i, density[window]
        z = (values - values[mask].mean()) / (values[mask].std() + 1e-3)
        out.append(np.stack([z, mask], -1))
    return np.array(out, np.float32).reshape(-1, SIDE, SIDE, 2)


def log_diameters(labels):
    areas = np.bincount(labels.ravel())[1:]
    return np.log(2 * np.sqrt(areas[areas > 0] / np.pi))


def block(h, filters):
    h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    return keras.layers.Activation("relu")(keras.layers.BatchNormalization()(h))


def network():
    """The classifier, and the model giving its 64 learned numbers (before the last layer)."""
    cells = keras.Input((SIDE, SIDE, 2))
    h = keras.layers.RandomRotation(0.5, fill_mode="reflect")(keras.layers.RandomFlip()(cells))
    h = keras.layers.MaxPooling2D()(block(h, 16))
    for filters in (32, 64):
        h = keras.layers.MaxPooling2D()(block(block(h, filters), filters))
    learned = keras.layers.GlobalAveragePooling2D()(h)
    p = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dropout(0.3)(learned))
    return keras.Model(cells, p), keras.Model(cells, learned)


def train(x, y):
    """The network fitted to the cells, classes weighed equally; the fit's wall seconds."""
    keras.utils.set_random_seed(SEED)
    net, learned = network()
    steps = EPOCHS * -(-len(y) // BATCH)
    net.compile(keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(2e-3, steps),
                                       weight_decay=1e-4), "binary_crossentropy")
    weights = {c: float(len(y) / (2 * np.sum(y == c))) for c in (0, 1)}
    began = time.perf_counter()
    net.fit(x, y.astype(np.float32), batch_size=BATCH, epochs=EPOCHS, class_weight=weights,
            verbose=2)
    return net, learned, time.perf_counter() - began


def accuracy_threshold(y, p):
    """The threshold that makes most training cells right: the accuracy goal's own threshold."""
    candidates = np.linspace(0.02, 0.98, 49)
    return float(candidates[np.argmax([np.mean((p > t) == y) for t in candidates])])


def kaggle(data, cfg, model):
    """Held-out rows as taken, recoloured and grey; the trained network; all cells' sizes."""
    found = find_cells(kaggle_images(data), cfg, model)
    held = np.random.default_rng(SEED).permutation(len(found))[:len(found) // 5]
    x, y, image = table(found, crops)
    sizes = np.concatenate([log_diameters(labels) for _, labels, _ in found])
    fit_on = ~np.isin(image, held)
    net, learned, seconds = train(x[fit_on], y[fit_on])
    fitted_p = net.predict(x[fit_on], batch_size=512, verbose=0)[:, 0]
    threshold = accuracy_threshold(y[fit_on], fitted_p)
    train_images = [f for i, f in enumerate(found) if i not in set(held)]
    variants = controls([found[i] for i in held], train_images)
    shown = {"plain": (x[~fit_on], y[~fit_on], image[~fit_on]),
             **{k: table(v, crops) for k, v in variants.items()}}
    rows = []
    for variant, (tx, ty, ti) in shown.items():
        p = net.predict(tx, batch_size=512, verbose=0)[:, 0]
        rows.append({"images": variant, **scores(ty, p, ti), "threshold": threshold,
                     "accuracy_at_threshold": float(np.mean((p > threshold) == ty)),
                     "all_blast_accuracy": float(np.mean(ty))})
        print(rows[-1])
    return rows, net, learned, seconds, (x, y, sizes, np.exp(np.median(sizes)))


def cnmc_crops(folder, diameter):
    """Each cut-out cell brought to diameter px across and cropped as crops() does; its label,
    subject and log diameter at its own scale."""
    out = []
    for cell in read_labelled_cells(folder):
        rgb = read_rgb(cell.path)
        labels = cut_out_cell(rgb)
        own = np.exp(log_diameters(labels)[0])
        f = diameter / own
        small = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(labels.astype(np.uint8), None, fx=f, fy=f,
                          interpolation=cv2.INTER_NEAREST)
        out.append((crops(small, mask)[0], cell.is_blast, cell.path.stem.split("_")[1],
                    np.log(own)))
    return [np.array(column) for column in zip(*out)]


def cnmc(folder, net, learned, kaggle_cells):
    """The network zero-shot, and the project's fit on its learned numbers with the size."""
    kx, ky, ksizes, diameter = kaggle_cells
    x, y, subjects, sizes = cnmc_crops(folder, diameter)
    zero_shot = scores(y, net.predict(x, verbose=0)[:, 0])
    numbers = np.c_[learned.predict(x, verbose=0), sizes]
    kaggle_numbers = np.c_[learned.predict(kx, batch_size=512, verbose=0), ksizes]
    return [{"setting": "the network trained on the Kaggle cells (zero-shot)", **zero_shot},
            *cnmc_rows(numbers, y, subjects, kaggle_numbers, ky)]


def markdown(rows, cnmc_rows, seconds):
    text = ["| held-out images | cells | accuracy at 0.5 | at the training cells' threshold "
            "| all called blast | balanced | AUC | image majority |",
            "|---|---|---|---|---|---|---|---|"]
    text += [f"| {r['images']} | {r['cells']} | {r['accuracy']:.3f} | "
             f"{r['accuracy_at_threshold']:.3f} ({r['threshold']:.2f}) | "
             f"{r['all_blast_accuracy']:.3f} | {r['balanced_accuracy']:.3f} | {r['auc']:.3f} | "
             f"{r['image_majority']:.3f} |" for r in rows]
    text += ["", "| another lab (C-NMC sample) | cells | balanced | AUC |", "|---|---|---|---|"]
    text += [f"| {r['setting']} | {r['cells']:.0f} | {r['balanced_accuracy']:.3f} "
             f"| {r['auc']:.3f} |" for r in cnmc_rows]
    return "\n".join(text + ["", f"The network's fit: {seconds:.0f} s ({EPOCHS} epochs)."])


def main():
    p = parser(__doc__, data=DATA / "leukemia-all", assets=False)
    p.add_argument("--cnmc", type=type(DATA), default=DATA / "cnmc-sample")
    args = parse(p)
    cfg = load_for_model(ROOT / "train_eval_infer.config", "pretrained")
    rows, net, learned, seconds, kaggle_cells = kaggle(args.data, cfg, load_predictor(cfg))
    other = cnmc(args.cnmc, net, learned, kaggle_cells) if args.cnmc.is_dir() else []
    text = markdown(rows, other, seconds)
    print(text)
    write_results(args.out / "blast_network", {"kaggle": rows, "cnmc": other,
                                                "fit_seconds": seconds}, text)


if __name__ == "__main__":
    main()
