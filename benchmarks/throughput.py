"""Training and inference throughput, peak memory and FLOPs: the project's pipeline against the
plain approach common in this field, on the same images, model and machine, in one run.

    python benchmarks/throughput.py [--quick] [--images N] [--configs seed cpu]

Plain training: every image in NumPy arrays, model.fit(x, y, batch_size=4, validation_split=0.2)
with Keras defaults. Plain inference: one model.predict call per image, then resize back and write.
The training step alone (train_on_batch on one fixed batch) shows the most any input side could buy.
Each measurement runs in its own process, so its peak resident memory is its own. Images are
synthetic 224x224 JPEG smears made here (speed does not depend on what the cells look like).
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

from common import ROOT, write_config  # benchmarks/common.py; puts ROOT on sys.path

CONFIGS = {"seed": ROOT / "train_eval_infer.config", "cpu": ROOT / "configs" / "early_cpu.config"}
VARIANTS = {  # name -> [train] overrides; "plain" is the common approach, not the project's code
    "plain": {}, "pipeline": {}, "pipeline_xla": {"jit_compile": "True"},
}


# ---------------------------------------------------------------- what is measured, per process

def conv_flops(model):
    """Forward FLOPs per image of the convolutions (multiply and add counted as 2), which are
    nearly all of a U-Net's arithmetic."""
    from keras import layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            total += 2 * h * w * layer.kernel_size[0] * layer.kernel_size[1] * c_in * layer.filters
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            total += (2 * h * w * layer.kernel_size[0] * layer.kernel_size[1]
                      * layer.input.shape[-1] * c_out)
    return total


def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.overhead = [], []

        # Training steps only, first batch start to last batch end: what the two approaches
        # share. Validation and end-of-epoch work (the trainer's checkpoints, plots, logs) are
        # timed apart, as epoch_overhead_seconds.
        def on_epoch_begin(self, epoch, logs=None):
            self.start = self.last = None

        def on_train_batch_begin(self, batch, logs=None):
            if self.start is None:
                self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self.last - self.start)
            self.overhead.append(time.perf_counter() - self.last)

    return EpochTimer()


def load_arrays(cfg, pairs):
    """The plain approach's input: every image and mask in memory at the model's size."""
    import cv2
    import numpy as np
    h, w = cfg.model.image_height, cfg.model.image_width
    x = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(p.image)), cv2.COLOR_BGR2RGB), (w, h))
                  for p in pairs]).astype("float32")
    y = np.stack([cv2.resize(cv2.imread(str(p.mask), cv2.IMREAD_GRAYSCALE), (w, h)) > 30
                  for p in pairs]).astype("float32")[..., None]
    return x, y


def train_worker(cfg, approach):
    """Trains for cfg.train.epochs; returns epoch times and the number of training images."""
    timer = epoch_timer()
    if approach == "plain":
        import keras
        from allseg.losses_metrics import make_loss, make_metrics
        from allseg.model import build_unet
        from allseg.pairing import find_pairs
        m, t = cfg.model, cfg.train
        x, y = load_arrays(cfg, find_pairs(t.image_datapath, t.mask_datapath, t.category))
        model = build_unet(m.image_height, m.image_width, 3, 1, m.base_filters, m.num_layers,
                           m.dropout_rate, m.activation, m.batch_norm)
        model.compile(keras.optimizers.Adam(m.learning_rate), make_loss(t.loss), metrics=make_metrics())
        model.fit(x, y, batch_size=4, validation_split=0.2, epochs=t.epochs, callbacks=[timer],
                  verbose=0)
        n_train = len(x) - int(len(x) * 0.2)
    else:
        from allseg.training import train
        from allseg.dataset import ALLDataset
        from allseg.pairing import split_pairs
        data = ALLDataset.from_config(cfg, "train")
        n_train = len(split_pairs(data.pairs, cfg.train.validation_split, cfg.train.seed)[0])
        train(cfg, extra_callbacks=[timer])
        model = None
    return {"epoch_seconds": timer.seconds, "epoch_overhead_seconds": timer.overhead,
            "train_images": n_train}


def step_worker(cfg, approach, steps=20):
    """The training step alone: train_on_batch on one fixed in-memory batch, no input pipeline,
    no callbacks. What no input side can beat: the ceiling for the approaches above."""
    import keras
    import numpy as np
    from allseg.losses_metrics import make_loss, make_metrics
    from allseg.model import build_unet
    m, t = cfg.model, cfg.train
    keras.utils.set_random_seed(0)
    model = build_unet(m.image_height, m.image_width, 3, 1, m.base_filters, m.num_layers,
                       m.dropout_rate, m.activation, m.batch_norm)
    model.compile(keras.optimizers.Adam(m.learning_rate), make_loss(t.loss), metrics=make_metrics(),
                  jit_compile=approach == "xla")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (t.batch_size, m.image_height, m.image_width, 3)).astype("float32")
    y = (rng.random((t.batch_size, m.image_height, m.image_width, 1)) > 0.9).astype("float32")
    for _ in range(2):  # trace (and compile) and warm the caches
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return {"seconds": time.perf_counter() - start, "images": steps * t.batch_size}


def infer_worker(cfg, approach):
    """Segments every image in [infer] images_dir; returns seconds and the image count."""
    import cv2
    import numpy as np
    from allseg.images import list_images
    from allseg.unet import load_trained_model
    files = list_images(cfg.infer.images_dir)
    model = load_trained_model(cfg)
    m = cfg.model
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
    else:
        from allseg.inference import infer
        from allseg.predict import predict_masks
        predict_masks(model, [np.zeros((m.image_height, m.image_width, 3), np.uint8)], m,
                      cfg.train.batch_size)  # warm: trace (and compile) the batch graph once
        start = time.perf_counter()
        written, _, failed = infer(cfg, model)
        assert len(written) == len(files) and not failed
    return {"seconds": time.perf_counter() - start, "images": len(files)}


def worker(args):
    """One measurement in this process; prints one JSON line with its peak memory."""
    from allseg.config import load_config
    from allseg.unet import TensorflowUNet
    cfg = load_config(args.config)
    if args.worker == "train":
        result = train_worker(cfg, args.approach)
    elif args.worker == "step":
        result = step_worker(cfg, args.approach)
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

def bench_config_file(base, path, data_dir, run_dir, train_values):
    """base with training data from data_dir (Kaggle layout), outputs under run_dir, inference
    over data_dir's originals and the [train] overrides given."""
    q = lambda p: f'"{Path(p).as_posix()}"'  # noqa: E731
    overrides = {"train.image_datapath": q(data_dir / "Original"),
                 "train.mask_datapath": q(data_dir / "Segmented"), "train.category": '"Early"',
                 "train.patience": "1000", "train.validation_split": "0.2",
                 "infer.images_dir": q(data_dir / "Original" / "Early"),
                 "model.show_summary": "False",
                 **{f"train.{key}": text for key, text in train_values.items()}}
    return write_config(base, path, run_dir, data_dir, overrides)


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
    from allseg.synthetic import write_master
    done = folder / "Original" / "Early"
    if not (done.is_dir() and len(list(done.iterdir())) >= count):
        write_master(folder, per_category=count, seed=11, categories=("Early",))
    return folder


def steady_rate(result):
    """Training images/s over the epochs after the first (graph tracing, caches warming)."""
    seconds = result["epoch_seconds"][1:] or result["epoch_seconds"]
    return result["train_images"] * len(seconds) / sum(seconds)


def bench_config(name, base, n, epochs, scratch, variants):
    print(f"\n== {name} config ({base.name}) on {n} and {4 * n} images ==", flush=True)
    small = make_images(scratch / f"images_{n}", n)
    large = make_images(scratch / f"images_{4 * n}", 4 * n)
    out = {"config": str(base.relative_to(ROOT)), "images": n, "epochs": epochs, "train": {},
           "memory": {}, "infer": {}}

    def config_for(tag, data_dir, train_values):
        run_dir = scratch / name / tag
        return bench_config_file(base, run_dir / "bench.config", data_dir, run_dir, train_values)

    for variant, values in variants.items():
        cfg = config_for(f"train_{variant}", small, {"epochs": str(epochs), **values})
        result = measure("train", "plain" if variant == "plain" else "pipeline", cfg)
        out["train"][variant] = {"images_per_s": steady_rate(result), **result}
        print(f"  train {variant:13s} {steady_rate(result):6.2f} img/s  peak "
              f"{result['peak_rss_mb']:.0f} MB", flush=True)
    out["step"] = {}
    for variant in ("plain", "xla") if "pipeline_xla" in variants else ():  # not in --quick
        result = measure("step", variant, config_for("step", small, {}))
        out["step"][variant] = {"images_per_s": result["images"] / result["seconds"], **result}
        print(f"  step alone {variant:8s} {out['step'][variant]['images_per_s']:6.2f} img/s", flush=True)
    for variant in ("plain", "pipeline"):
        cfg = config_for(f"memory_{variant}", large, {"epochs": "1"})
        result = measure("train", variant, cfg)
        growth = result["peak_rss_mb"] / out["train"][variant]["peak_rss_mb"]
        out["memory"][variant] = {"peak_rss_mb_n": out["train"][variant]["peak_rss_mb"],
                                  "peak_rss_mb_4n": result["peak_rss_mb"], "growth_4x": growth}
        print(f"  memory {variant:12s} {result['peak_rss_mb']:.0f} MB on {4 * n} images "
              f"({growth:.2f}x of {n})", flush=True)

    infer_cfg = config_for("infer", small, {})
    out["flops_forward"] = measure("save_model", "pipeline", infer_cfg)["flops_forward"]
    for variant, values in variants.items():
        cfg = config_for("infer", small, values)
        result = measure("infer", "plain" if variant == "plain" else "pipeline", cfg)
        out["infer"][variant] = {"images_per_s": result["images"] / result["seconds"], **result}
        print(f"  infer {variant:13s} {out['infer'][variant]['images_per_s']:6.2f} img/s", flush=True)

    fwd = out["flops_forward"]
    for part, per_image in (("train", 3 * fwd), ("step", 3 * fwd), ("infer", fwd)):  # backward ~ 2x forward
        for row in out[part].values():
            row["gflop_per_s"] = row["images_per_s"] * per_image / 1e9
    best = lambda part: max((v for k, v in out[part].items() if k != "plain"),  # noqa: E731
                            key=lambda row: row["images_per_s"])
    out["train_speedup"] = best("train")["images_per_s"] / out["train"]["plain"]["images_per_s"]
    out["infer_speedup"] = best("infer")["images_per_s"] / out["infer"]["plain"]["images_per_s"]
    # The most any input pipeline could buy: the fastest step alone over the plain approach.
    out["train_ceiling"] = (max(v["images_per_s"] for v in out["step"].values())
                            / out["train"]["plain"]["images_per_s"]) if out["step"] else None
    return out


def table(results):
    lines = ["| config | measure | plain | pipeline | pipeline + XLA | best / plain |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        for part, speedup in (("train", r["train_speedup"]), ("infer", r["infer_speedup"])):
            cells = [f"{r[part][v]['images_per_s']:.2f} img/s ({r[part][v]['gflop_per_s']:.0f} GFLOP/s)"
                     if v in r[part] else "-" for v in VARIANTS]
            lines.append(f"| {name} | {part} | {' | '.join(cells)} | {speedup:.2f}x |")
        step = r["step"]
        if step:
            lines.append(f"| {name} | training step alone (fixed batch, no input) | "
                         f"{step['plain']['images_per_s']:.2f} img/s ({step['plain']['gflop_per_s']:.0f} "
                         f"GFLOP/s) | | {step['xla']['images_per_s']:.2f} img/s "
                         f"({step['xla']['gflop_per_s']:.0f} GFLOP/s) | ceiling {r['train_ceiling']:.2f}x |")
        mem = r["memory"]
        lines.append(f"| {name} | peak memory, {r['images']} -> {4 * r['images']} images | "
                     f"{mem['plain']['peak_rss_mb_n']:.0f} -> {mem['plain']['peak_rss_mb_4n']:.0f} MB"
                     f" | {mem['pipeline']['peak_rss_mb_n']:.0f} -> "
                     f"{mem['pipeline']['peak_rss_mb_4n']:.0f} MB | | "
                     f"plain {mem['plain']['growth_4x']:.2f}x, pipeline {mem['pipeline']['growth_4x']:.2f}x |")
        lines.append(f"| {name} | forward GFLOP per image | {r['flops_forward'] / 1e9:.2f} | | | |")
    return "\n".join(lines)


def machine():
    import tensorflow as tf
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": [g.name for g in tf.config.list_physical_devices("GPU")],
            "tensorflow": tf.__version__, "python": platform.python_version()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the seed config only, without XLA, on fewer images (< 5 min)")
    parser.add_argument("--images", type=int, help="N: images per training run (4N for memory)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS))
    parser.add_argument("--scratch", type=Path, default=ROOT / "bench_runs" / "throughput")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", choices=["train", "step", "save_model", "infer"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--approach", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    n = args.images or (8 if args.quick else 48)
    epochs = 2 if args.quick else 3
    configs = args.configs or (["seed"] if args.quick else list(CONFIGS))
    variants = {k: v for k, v in VARIANTS.items() if not (args.quick and k == "pipeline_xla")}
    start = time.perf_counter()
    results = {name: bench_config(name, CONFIGS[name], n, epochs, args.scratch, variants)
               for name in configs}
    head = results.get("seed") or next(iter(results.values()))
    report = {"train_speedup": head["train_speedup"], "infer_speedup": head["infer_speedup"],
              "train_ceiling": head["train_ceiling"],
              "memory_growth_4x": head["memory"]["pipeline"]["growth_4x"],
              "headline_config": "seed" if "seed" in results else configs[0],
              "quick": args.quick, "machine": machine(), "configs": results,
              "wall_seconds": time.perf_counter() - start}
    text = table(results)
    print("\n" + text)
    print(f"\ntrain_speedup {report['train_speedup']:.2f}x, infer_speedup "
          f"{report['infer_speedup']:.2f}x, memory_growth_4x {report['memory_growth_4x']:.2f} "
          f"({report['headline_config']} config); {report['wall_seconds'] / 60:.1f} min")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "throughput_quick" if args.quick else "throughput"
    from allseg.files import write_json, write_text
    write_json(args.out / f"{stem}.json", report)
    write_text(args.out / f"{stem}.md", text + "\n")


if __name__ == "__main__":
    main()
