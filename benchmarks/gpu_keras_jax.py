"""The project's U-Net on a GPU through Keras 3's JAX backend: speed, and the seed config trained
and scored on the real Early class.

Why JAX: the GPU machines this project was lent carry JAX with CUDA but no TensorFlow, and
TensorFlow (1.9 GB installed) could not be brought along. The graph, loss and metrics are the
project's own (allseg.model.architecture, allseg.model.losses_metrics use keras.ops only), as are pairing, the
validation split, prediction at the image's own size and the scores; what differs from the
trainer is the input pipeline (arrays in memory, flips and turns in NumPy) and the absence of
TensorFlow. Timed figures are therefore this backend's, not the TensorFlow trainer's.

    KERAS_BACKEND=jax python benchmarks/gpu_keras_jax.py --data DIR --out DIR [--budget S]

Writes gpu_results.json in --out after every part, so a run cut short keeps what it measured.
(The longer schedules of the CPU config that docs/research-notes.md reports were run by this
script as it was in commit cc12249.)
"""
import argparse
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("KERAS_BACKEND", "jax")
from common import ROOT  # noqa: E402  (benchmarks/common.py; puts the project on sys.path)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from allseg.core.config import load_config  # noqa: E402
from allseg.core.files import write_text  # noqa: E402
from allseg.data.images import read_mask, read_rgb, resize_image, resize_mask  # noqa: E402
from allseg.model.losses_metrics import make_loss, make_metrics  # noqa: E402
from allseg.model.architecture import build_unet  # noqa: E402
from allseg.data.pairing import find_pairs, split_pairs  # noqa: E402
from allseg.infer.predict import predict_masks  # noqa: E402
from allseg.evaluate.scoring import score_image, summarize  # noqa: E402
from allseg.data.splitting import read_split_csv  # noqa: E402

PREDICT_BATCH = 32


def load_split(data):
    """(fit, val, test) lists of (rgb, mask) at 224x224: the reference split's 788 training images
    carved into fit/val exactly as the trainer does (validation_split 0.2, seed 42)."""
    assignment = read_split_csv(Path(data) / "split.csv")
    pairs = find_pairs(Path(data) / "Original", Path(data) / "Segmented", "Early")
    train = [p for p in pairs if assignment[p.image.name] == "train"]
    test = [p for p in pairs if assignment[p.image.name] == "test"]
    fit, val = split_pairs(train, 0.2, 42)
    read = lambda ps: [(read_rgb(p.image), read_mask(p.mask)) for p in ps]  # noqa: E731
    return read(fit), read(val), read(test)


def as_arrays(pairs, size):
    x = np.stack([resize_image(rgb, size, size) for rgb, _ in pairs])
    y = np.stack([resize_mask(mask, size, size) for _, mask in pairs])[..., None]
    return x, y.astype(np.float32)


class Batches(keras.utils.PyDataset):
    """Shuffled full batches from arrays; with turns, each image gets a random flip and 90-degree
    turn (jointly with its mask), as the trainer's augment_flips does."""

    def __init__(self, x, y, batch_size, seed, turns):
        super().__init__()
        self.x, self.y, self.batch_size, self.turns = x, y, batch_size, turns
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self):
        return len(self.x) // self.batch_size

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))

    def __getitem__(self, i):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        x, y = self.x[idx].astype(np.float32), self.y[idx]
        if self.turns:
            for j in range(len(idx)):
                k, flip = self.rng.integers(4), self.rng.integers(2)
                x[j], y[j] = np.rot90(x[j], k), np.rot90(y[j], k)
                if flip:
                    x[j], y[j] = x[j][:, ::-1], y[j][:, ::-1]
        return x, y


class Clock(keras.callbacks.Callback):
    """Training-step seconds per epoch (validation excluded), the best weights by val_loss, and a
    wall-clock budget after which training stops at the end of the epoch."""

    def __init__(self, budget_s):
        super().__init__()
        self.budget_s, self.train_s, self.best, self.best_weights = budget_s, [], np.inf, None
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
        self.t_train = None

    def on_test_begin(self, logs=None):
        if self.t_train is None:
            self.t_train = time.perf_counter() - self.t0

    def on_epoch_end(self, epoch, logs=None):
        self.train_s.append(self.t_train if self.t_train is not None else time.perf_counter() - self.t0)
        if logs and logs.get("val_loss", np.inf) < self.best:
            self.best, self.best_epoch = logs["val_loss"], epoch + 1
            self.best_weights = self.model.get_weights()
        if time.perf_counter() - self.start > self.budget_s:
            print(f"  time budget {self.budget_s:.0f} s reached after epoch {epoch + 1}")
            self.model.stop_training = True


def build(m, mixed):
    keras.config.set_dtype_policy("mixed_float16" if mixed else "float32")
    try:
        return build_unet(m.image_height, m.image_width, 3, 1, m.base_filters, m.num_layers,
                          m.dropout_rate, m.activation, m.batch_norm)
    finally:
        keras.config.set_dtype_policy("float32")


def score(model, m, pairs):
    rows = []
    for start in range(0, len(pairs), PREDICT_BATCH):
        chunk = pairs[start:start + PREDICT_BATCH]
        masks = predict_masks(model, [rgb for rgb, _ in chunk], m, PREDICT_BATCH)
        rows += [score_image(start + i, pred, truth) for i, (pred, (_, truth)) in enumerate(zip(masks, chunk))]
    s = summarize(rows)
    return {k: round(s[k], 4) for k in ("mean_dice", "median_dice", "p10_dice", "pooled_dice")}


def train_and_score(name, cfg, split, mixed, budget_s, test=False):
    """Trains one config to its epochs / early stop / budget; scores fit (no augmentation), val and,
    if asked, test at the images' own size with the best weights by validation loss."""
    m, t = cfg.model, cfg.train
    if t.augment_color or m.image_height != m.image_width:
        raise SystemExit(f"{name}: colour jitter and non-square images are not implemented here")
    fit, val, tst = split
    size = m.image_height
    x, y = as_arrays(fit, size)
    xv, yv = as_arrays(val, size)
    keras.utils.set_random_seed(t.seed)
    model = build(m, mixed)
    steps = len(x) // t.batch_size
    lr = (keras.optimizers.schedules.CosineDecay(m.learning_rate, steps * t.epochs)
          if t.lr_schedule == "cosine" else m.learning_rate)
    model.compile(keras.optimizers.Adam(lr), loss=make_loss(t.loss), metrics=make_metrics())
    clock = Clock(budget_s)
    stop = keras.callbacks.EarlyStopping("val_loss", patience=t.patience)
    start = time.perf_counter()
    hist = model.fit(Batches(x, y, t.batch_size, t.seed, t.augment_flips),
                     validation_data=(xv.astype(np.float32), yv), validation_batch_size=PREDICT_BATCH,
                     epochs=t.epochs, callbacks=[clock, stop], verbose=2)
    wall = time.perf_counter() - start
    model.set_weights(clock.best_weights)
    steady = clock.train_s[1:] or clock.train_s
    result = {
        "name": name, "mixed_precision": mixed, "epochs_run": len(clock.train_s),
        "best_epoch": clock.best_epoch, "best_val_loss": round(float(clock.best), 5),
        "train_img_per_s": round(steps * t.batch_size * len(steady) / sum(steady), 1),
        "wall_s": round(wall, 1),
        "last_train_dice_pooled": round(float(hist.history["dice"][-1]), 4),
        "fit": score(model, m, fit), "val": score(model, m, val),
    }
    if test:
        result["test"] = score(model, m, tst)
    print(f"  {name}: {json.dumps(result)}")
    return result


def throughput(cfg, split, budget_s):
    """Seed config: the plain approach (arrays, model.fit(x, y, batch_size=4,
    validation_split=0.2), float32; one model.predict per image) against batched, mixed precision
    training and batched prediction. JAX compiles every step function in both."""
    m, t = cfg.model, cfg.train
    fit, val, tst = split
    x, y = as_arrays(fit + val, m.image_height)
    x = x.astype(np.float32)
    out = {}
    for label, mixed, batch in (("plain_fp32_b4", False, 4), ("mixed_b4", True, 4), ("mixed_b16", True, 16)):
        keras.utils.set_random_seed(1)
        model = build(m, mixed)
        model.compile(keras.optimizers.Adam(m.learning_rate), loss=make_loss(t.loss), metrics=make_metrics())
        clock = Clock(budget_s)
        if label.startswith("plain"):
            model.fit(x, y, batch_size=4, validation_split=0.2, epochs=3, callbacks=[clock], verbose=0)
            n = int(len(x) * 0.8) // 4 * 4
        else:
            model.fit(Batches(x, y, batch, 0, False), epochs=3, callbacks=[clock], verbose=0)
            n = len(x) // batch * batch
        out[f"train_{label}_img_per_s"] = round(n * 2 / sum(clock.train_s[1:]), 1)
        if label == "plain_fp32_b4":
            rgbs = [rgb for rgb, _ in tst]
            model.predict(x[:1], verbose=0)
            t0 = time.perf_counter()
            for rgb in rgbs:  # plain: one call per image, then back to the image's size
                prob = model.predict(resize_image(rgb, m.image_height, m.image_height)[None].astype(np.float32), verbose=0)
                _ = resize_mask(prob[0, ..., 0] > 0.5, *rgb.shape[:2])
            out["infer_plain_one_call_per_image_img_per_s"] = round(len(rgbs) / (time.perf_counter() - t0), 1)
        if label == "mixed_b16":
            score(model, m, tst[:PREDICT_BATCH])  # compile once
            t0 = time.perf_counter()
            score(model, m, tst)
            out["infer_batched_mixed_img_per_s"] = round(len(tst) / (time.perf_counter() - t0), 1)
        print(f"  throughput {label}: {out}")
    out["train_speedup_mixed_b4"] = round(out["train_mixed_b4_img_per_s"] / out["train_plain_fp32_b4_img_per_s"], 2)
    out["infer_speedup"] = round(out["infer_batched_mixed_img_per_s"] / out["infer_plain_one_call_per_image_img_per_s"], 2)
    return out


def with_overrides(cfg, model=None, train=None):
    m = SimpleNamespace(**{**vars(cfg.model), **(model or {})})
    t = SimpleNamespace(**{**vars(cfg.train), **(train or {})})
    return SimpleNamespace(model=m, train=t)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "leukemia-early"))
    p.add_argument("--out", default=str(ROOT / "bench_runs" / "gpu"))
    p.add_argument("--budget", type=float, default=480, help="seconds for the whole run")
    p.add_argument("--smoke", action="store_true", help="a few images and epochs (checks it runs)")
    args = p.parse_args()
    began = time.perf_counter()
    left = lambda: args.budget - (time.perf_counter() - began)  # noqa: E731
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import jax
    results = {"backend": f"keras {keras.__version__} on jax {jax.__version__}",
               "devices": [str(d) for d in jax.devices()]}
    print(results)

    def save():
        write_text(out / "gpu_results.json", json.dumps(results, indent=2) + "\n")

    split = load_split(args.data)
    if args.smoke:
        split = tuple(part[:16] for part in split)
    print(f"fit {len(split[0])}, val {len(split[1])}, test {len(split[2])} images")
    seed = load_config(ROOT / "train_eval_infer.config")
    short = {"epochs": 2} if args.smoke else {}

    results["throughput_seed"] = throughput(seed, split, left())
    save()
    # The seed's own config as written (bce, constant rate, no flips, patience 10), mixed precision;
    # its time budget is the one the documented run (--budget 470) gave it.
    results["seed_config_real_early"] = train_and_score(
        "seed config", with_overrides(seed, train=short), split, True, min(left() - 240, 200), test=True)
    save()
    results["wall_s"] = round(time.perf_counter() - began, 1)
    save()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
