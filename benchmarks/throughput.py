"""Training and inference throughput, peak memory and FLOPs: the project's pipeline against the
plain approach common in this field, on the same images, model and machine, in one run.

Plain training: every image in NumPy arrays, model.fit(x, y, batch_size=4, validation_split=0.2)
with Keras defaults. Plain inference: one model.predict call per image, then resize back and write.
Inference runs once per engine ([infer] engine: keras, openvino, litert), end to end (read,
predict, resize back, write) and as the forward pass alone on one fixed batch; infer_speedup is
the "auto" engine's end to end rate over plain inference, at the seed config. Each measurement
runs in its own process, so its peak resident memory is its own. Images are synthetic 224x224
JPEG smears made here (speed does not depend on what the cells look like).
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2  # cv2 and NumPy: loaded in every worker anyway (by the project's model module)
import numpy as np
from common import ROOT, quoted, write_config, write_results  # ROOT on sys.path

CONFIGS = {"seed": ROOT / "train_eval_infer.config", "cpu": ROOT / "configs" / "early_cpu.config"}
ENGINES = ("keras", "openvino", "litert")  # inference rows beside plain


# ---------------------------------------------------------------- what is measured, per process

def conv_flops(model):
    """Forward FLOPs per image of the convolutions (a multiply-add counts 2): nearly all of it."""
    from keras import layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            transposed = isinstance(layer, layers.Conv2DTranspose)
            _, h, w, _ = (layer.input if transposed else layer.output).shape
            total += (2 * h * w * layer.kernel_size[0] * layer.kernel_size[1]
                      * layer.input.shape[-1] * layer.filters)
    return total


def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Training steps only, first batch start to last batch end: what the two approaches
        share. Validation and end-of-epoch work (the trainer's checkpoints, plots, logs) are
        timed apart, as epoch_overhead_seconds."""

        def __init__(self):
            super().__init__()
            self.seconds, self.overhead, self.start = [], [], None

        def on_train_batch_begin(self, batch, logs=None):
            self.start = self.start or time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self.last - self.start)
            self.overhead.append(time.perf_counter() - self.last)
            self.start = None  # the next epoch's first batch starts its clock

    return EpochTimer()


def train_worker(cfg, approach):
    """Trains for cfg.train.epochs; returns epoch times and the number of training images."""
    timer = epoch_timer()
    if approach == "plain":  # every image and mask in memory at the model's size
        import keras
        from allseg.data.pairing import find_pairs
        from allseg.model.architecture import build_unet
        from allseg.model.losses_metrics import make_loss, make_metrics
        m, t = cfg.model, cfg.train
        pairs = find_pairs(t.image_datapath, t.mask_datapath, t.category)
        size = (m.image_width, m.image_height)
        x = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(p.image)), cv2.COLOR_BGR2RGB), size)
                      for p in pairs]).astype("float32")
        y = np.stack([cv2.resize(cv2.imread(str(p.mask), cv2.IMREAD_GRAYSCALE), size) > 30
                      for p in pairs]).astype("float32")[..., None]
        model = build_unet(m.image_height, m.image_width, 3, 1, m.base_filters, m.num_layers,
                           m.dropout_rate, m.activation, m.batch_norm)
        model.compile(keras.optimizers.Adam(m.learning_rate), make_loss(t.loss),
                      metrics=make_metrics())
        model.fit(x, y, batch_size=4, validation_split=0.2, epochs=t.epochs, callbacks=[timer],
                  verbose=0)
        n_train = len(x) - int(len(x) * 0.2)
    else:
        from allseg.data.dataset import ALLDataset
        from allseg.data.pairing import split_pairs
        from allseg.train.training import train
        data = ALLDataset.from_config(cfg, "train")
        n_train = len(split_pairs(data.pairs, cfg.train.validation_split, cfg.train.seed)[0])
        train(cfg, extra_callbacks=[timer])
    return {"epoch_seconds": timer.seconds, "epoch_overhead_seconds": timer.overhead,
            "train_images": n_train}


def infer_worker(cfg, approach):
    """Segments every image in [infer] images_dir; returns seconds and the image count."""
    from allseg.data.images import list_images
    from allseg.model.unet import load_trained_model
    files, m = list_images(cfg.infer.images_dir), cfg.model
    loading = time.perf_counter()
    model = load_trained_model(cfg)
    if approach == "plain":
        out = Path(cfg.infer.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.predict(np.zeros((1, m.image_height, m.image_width, 3), "float32"), verbose=0)  # warm
        start = time.perf_counter()
        for path in files:
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            x = cv2.resize(rgb, (m.image_width, m.image_height)).astype("float32")[None]
            prob = model.predict(x, verbose=0)[0, :, :, 0]
            mask = cv2.resize((prob > 0.5).astype("uint8") * 255, rgb.shape[1::-1],
                              interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(out / f"{path.stem}.png"), mask)
        return {"seconds": time.perf_counter() - start, "images": len(files), "engine": "keras"}
    from allseg.infer.engines import load_predictor
    from allseg.infer.inference import infer
    from allseg.infer.predict import predict_masks
    model = load_predictor(cfg, model)  # [infer] engine; converts on first use
    predict_masks(model, [np.zeros((m.image_height, m.image_width, 3), np.uint8)], m,
                  cfg.train.batch_size)  # warm: trace the batch graph once
    loaded = start = time.perf_counter()
    written, _, failed = infer(cfg, model)
    assert len(written) == len(files) and not failed
    return {"seconds": time.perf_counter() - start, "images": len(files),
            "engine": cfg.infer.engine, "load_seconds": loaded - loading}


def forward_worker(cfg, rows, min_seconds=3.0):
    """The forward pass alone on one fixed batch of [train] batch_size random 0-255 images, per
    row: "plain" (model.predict), "keras" (predict_on_batch, as the pipeline calls it) or an
    engine (its cached conversion); with the largest probability difference from Keras."""
    from allseg.infer.engines import cached_engine
    from allseg.model.unet import load_trained_model
    m, batch = cfg.model, cfg.train.batch_size
    model = load_trained_model(cfg)
    x = np.random.default_rng(0).integers(0, 256, (batch, m.image_height, m.image_width, 3),
                                          dtype=np.uint8)
    want = model.predict_on_batch(x.astype("float32"))
    out = {}
    for row in rows:
        if row == "plain":
            run = lambda: model.predict(x.astype("float32"), verbose=0)  # noqa: E731
        elif row == "keras":
            run = lambda: model.predict_on_batch(x.astype("float32"))  # noqa: E731
        else:
            engine = cached_engine(row, model, Path(cfg.train.model_dir) / "best_model.keras")
            run = lambda e=engine: e.predict_on_batch(x)  # noqa: E731
        diff = float(np.abs(run() - want).max())  # also the warm-up
        run()
        start, count = time.perf_counter(), 0
        while count < 3 or time.perf_counter() - start < min_seconds:
            run()
            count += 1
        seconds = time.perf_counter() - start
        out[row] = {"images_per_s": count * batch / seconds, "seconds": seconds,
                    "images": count * batch, "batch": batch, "max_abs_diff_vs_keras": diff}
    return out


def worker(args):
    """One measurement in this process; prints one JSON line with its peak memory."""
    from allseg.core.config import load_config
    from allseg.model.unet import TensorflowUNet
    cfg = load_config(args.config)
    if args.worker == "train":
        result = train_worker(cfg, args.approach)
    elif args.worker == "forward":
        result = {"rows": forward_worker(cfg, args.approach.split(","))}
    elif args.worker == "save_model":
        unet = TensorflowUNet(cfg)
        Path(cfg.train.model_dir).mkdir(parents=True, exist_ok=True)
        unet.model.save(Path(cfg.train.model_dir) / "best_model.keras")
        result = {"flops_forward": conv_flops(unet.model)}
    else:
        result = infer_worker(cfg, args.approach)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------- the driver

def measure(task, approach, config):
    proc = subprocess.run([sys.executable, __file__, "--worker", task, "--approach", approach,
                           "--config", str(config)], capture_output=True, text=True,
                          env={**os.environ, "CI": "1"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{task}/{approach} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def make_images(folder, count):
    """count synthetic Early pairs in the Kaggle layout (made once, reused)."""
    from allseg.data.synthetic import write_master
    done = folder / "Original" / "Early"
    if not (done.is_dir() and len(list(done.iterdir())) >= count):
        write_master(folder, per_category=count, seed=11, categories=("Early",))
    return folder


def steady_rate(result):
    """Training images/s over the epochs after the first (graph tracing, caches warming)."""
    seconds = result["epoch_seconds"][1:] or result["epoch_seconds"]
    return result["train_images"] * len(seconds) / sum(seconds)


def bench_config(name, base, n, epochs, scratch, auto_engine):
    print(f"\n== {name} config ({base.name}) on {n} and {4 * n} images ==", flush=True)
    small, large = (make_images(scratch / f"images_{k}", k) for k in (n, 4 * n))
    out = {"config": str(base.relative_to(ROOT)), "images": n, "epochs": epochs, "train": {},
           "memory": {}, "infer": {}}

    def config_for(tag, data_dir, epochs=epochs, engine="keras"):
        """base training on data_dir (no early stop) and segmenting its originals."""
        run_dir = scratch / name / tag
        return write_config(base, run_dir / "bench.config", run_dir, data_dir, {
            "train.image_datapath": quoted(data_dir / "Original"),
            "train.mask_datapath": quoted(data_dir / "Segmented"), "train.category": '"Early"',
            "train.patience": "1000", "train.validation_split": "0.2", "train.epochs": str(epochs),
            "infer.images_dir": quoted(data_dir / "Original" / "Early"),
            "infer.engine": f'"{engine}"', "model.show_summary": "False"})

    for approach in ("plain", "pipeline"):
        result = measure("train", approach, config_for(f"train_{approach}", small))
        out["train"][approach] = {"images_per_s": steady_rate(result), **result}
        peaks = result["peak_rss_mb"], measure("train", approach, config_for(
            f"memory_{approach}", large, 1))["peak_rss_mb"]
        out["memory"][approach] = {"peak_rss_mb_n": peaks[0], "peak_rss_mb_4n": peaks[1],
                                   "growth_4x": peaks[1] / peaks[0]}
        print(f"  train {approach:9s} {steady_rate(result):6.2f} img/s; peak memory {peaks[0]:.0f}"
              f" MB on {n} images, {peaks[1]:.0f} on {4 * n}", flush=True)
    out["flops_forward"] = measure("save_model", "pipeline",
                                   config_for("infer", small))["flops_forward"]
    for row in ("plain",) + ENGINES:
        result = measure("infer", "plain" if row == "plain" else "pipeline",
                         config_for("infer", small, engine="keras" if row == "plain" else row))
        out["infer"][row] = {"images_per_s": result["images"] / result["seconds"], **result}
        print(f"  infer {row:13s} {out['infer'][row]['images_per_s']:6.2f} img/s", flush=True)
    # after the infer rows, so the engines' conversions are cached
    out["forward"] = measure("forward", ",".join(("plain",) + ENGINES),
                             config_for("infer", small))["rows"]
    for row, r in out["forward"].items():
        print(f"  forward alone {row:9s} {r['images_per_s']:6.2f} img/s (batch {r['batch']}, "
              f"max |p - keras| {r['max_abs_diff_vs_keras']:.1e})", flush=True)

    for part, per_image in (("train", 3 * out["flops_forward"]),  # backward ~ 2x forward
                            ("infer", out["flops_forward"]), ("forward", out["flops_forward"])):
        for row in out[part].values():
            row["gflop_per_s"] = row["images_per_s"] * per_image / 1e9
    rate = lambda part, row: out[part][row]["images_per_s"]  # noqa: E731
    out["train_speedup"] = rate("train", "pipeline") / rate("train", "plain")
    out["infer_engine"] = auto_engine  # the engine "auto" picks on this machine
    out["infer_speedup"] = rate("infer", auto_engine) / rate("infer", "plain")
    out["infer_best_speedup"] = max(rate("infer", e) for e in ENGINES) / rate("infer", "plain")
    return out


def rate(row):
    return f"{row['images_per_s']:.2f} img/s ({row['gflop_per_s']:.0f} GFLOP/s)"


def table(results):
    lines = ["| config | measure | plain | pipeline | pipeline / plain |", "|---" * 5 + "|"]
    for name, r in results.items():
        mem = r["memory"]
        peaks = [f"{mem[a]['peak_rss_mb_n']:.0f} -> {mem[a]['peak_rss_mb_4n']:.0f} MB"
                 for a in ("plain", "pipeline")]
        lines += [f"| {name} | train | {rate(r['train']['plain'])} | "
                  f"{rate(r['train']['pipeline'])} | {r['train_speedup']:.2f}x |",
                  f"| {name} | peak memory, {r['images']} -> {4 * r['images']} images | {peaks[0]} "
                  f"| {peaks[1]} | plain {mem['plain']['growth_4x']:.2f}x, pipeline "
                  f"{mem['pipeline']['growth_4x']:.2f}x |",
                  f"| {name} | forward GFLOP per image | {r['flops_forward'] / 1e9:.2f} | | |"]
    lines += ["", "| config | engine | end to end (read, predict, resize back, write) | "
              "forward pass alone (fixed batch) | max abs probability diff from Keras | "
              "end to end / plain |", "|---" * 6 + "|"]
    for name, r in results.items():
        for row in ("plain",) + ENGINES:
            f = r["forward"][row]
            label = ("plain (Keras, model.predict per image)" if row == "plain" else row
                     + (" (auto)" if row == r["infer_engine"] else ""))
            diff = "" if row == "plain" else f"{f['max_abs_diff_vs_keras']:.1e}"
            speedup = r["infer"][row]["images_per_s"] / r["infer"]["plain"]["images_per_s"]
            lines.append(f"| {name} | {label} | {rate(r['infer'][row])} | {rate(f)} | {diff} | "
                         f"{speedup:.2f}x |")
    return "\n".join(lines)


def machine():
    import tensorflow as tf
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    names = [line.partition(":")[2].strip() for line in info.splitlines() if "model name" in line]
    return {"cpu": names[0] if names else platform.processor(), "cores": os.cpu_count(),
            "gpus": [g.name for g in tf.config.list_physical_devices("GPU")],
            "tensorflow": tf.__version__, "python": platform.python_version()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="the seed config only, on fewer images and epochs (< 5 min)")
    parser.add_argument("--images", type=int, help="N: images per training run (4N for memory)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS))
    parser.add_argument("--scratch", type=Path, default=ROOT / "bench_runs" / "throughput")
    parser.add_argument("--out", type=Path, help="default benchmarks/results; --quick: --scratch, "
                        "since a smoke run's figures are no result")
    for hidden in ("--worker", "--approach", "--config"):  # what measure() gives a worker
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    n = args.images or (8 if args.quick else 48)
    configs = args.configs or (["seed"] if args.quick else list(CONFIGS))
    start = time.perf_counter()
    from allseg.infer.engines import choose
    auto_engine, why = choose("auto", None)
    print(f"[infer] engine = \"auto\" here: {auto_engine} ({why})")
    results = {name: bench_config(name, CONFIGS[name], n, 2 if args.quick else 3, args.scratch,
                                  auto_engine) for name in configs}
    head = "seed" if "seed" in results else configs[0]
    keys = ("train_speedup", "infer_speedup", "infer_best_speedup")
    report = {**{k: results[head][k] for k in keys}, "infer_engine": auto_engine,
              "memory_growth_4x": results[head]["memory"]["pipeline"]["growth_4x"],
              "headline_config": head, "quick": args.quick, "machine": machine(),
              "configs": results, "wall_seconds": time.perf_counter() - start}
    text = table(results)
    print("\n" + text)
    print(f"\ntrain_speedup {report['train_speedup']:.2f}x, infer_speedup "
          f"{report['infer_speedup']:.2f}x ({auto_engine}, auto), memory_growth_4x "
          f"{report['memory_growth_4x']:.2f} ({head} config); "
          f"{report['wall_seconds'] / 60:.1f} min")
    out = args.out or (args.scratch if args.quick else ROOT / "benchmarks" / "results")
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("throughput_quick" if args.quick else "throughput")
    write_results(stem, report, text)
    print(f"Wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
