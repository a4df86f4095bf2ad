"""Training and inference throughput, peak memory and FLOPs: the project's pipeline against the
plain approach common in this field, on the same images, model and machine, in one run.

    python benchmarks/throughput.py [--quick] [--images N] [--configs seed cpu]

Plain training: every image in NumPy arrays, model.fit(x, y, batch_size=4, validation_split=0.2)
with Keras defaults. Plain inference: one model.predict call per image, then resize back and write.
The training step alone (train_on_batch on one fixed batch) shows the most any input side could buy.
Inference runs once per engine ([infer] engine: keras, openvino, litert), end to end (read,
predict, resize back, write) and as the forward pass alone on one fixed batch; infer_speedup is
the "auto" engine's end to end rate over plain inference, at the seed config. GFLOP/s are also
given as a share of the machine's ceiling (machine_ceiling below: what /proc/cpuinfo reports).
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
# Inference rows beside plain: the pipeline with each engine ("pipeline" and "pipeline_xla" are
# Keras's). The forward pass alone adds "plain" (model.predict on the batch) and the same engines.
ENGINE_ROWS = ("openvino", "litert")


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
        from allseg.model.losses_metrics import make_loss, make_metrics
        from allseg.model.architecture import build_unet
        from allseg.data.pairing import find_pairs
        m, t = cfg.model, cfg.train
        x, y = load_arrays(cfg, find_pairs(t.image_datapath, t.mask_datapath, t.category))
        model = build_unet(m.image_height, m.image_width, 3, 1, m.base_filters, m.num_layers,
                           m.dropout_rate, m.activation, m.batch_norm)
        model.compile(keras.optimizers.Adam(m.learning_rate), make_loss(t.loss), metrics=make_metrics())
        model.fit(x, y, batch_size=4, validation_split=0.2, epochs=t.epochs, callbacks=[timer],
                  verbose=0)
        n_train = len(x) - int(len(x) * 0.2)
    else:
        from allseg.train.training import train
        from allseg.data.dataset import ALLDataset
        from allseg.data.pairing import split_pairs
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
    from allseg.model.losses_metrics import make_loss, make_metrics
    from allseg.model.architecture import build_unet
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
    from allseg.data.images import list_images
    from allseg.model.unet import load_trained_model
    files = list_images(cfg.infer.images_dir)
    loading = time.perf_counter()
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
        from allseg.infer.engines import load_predictor
        from allseg.infer.inference import infer
        from allseg.infer.predict import predict_masks
        model = load_predictor(cfg, model)  # [infer] engine; converts on first use
        predict_masks(model, [np.zeros((m.image_height, m.image_width, 3), np.uint8)], m,
                      cfg.train.batch_size)  # warm: trace (and compile) the batch graph once
        loaded = time.perf_counter()
        start = time.perf_counter()
        written, _, failed = infer(cfg, model)
        assert len(written) == len(files) and not failed
        return {"seconds": time.perf_counter() - start, "images": len(files),
                "engine": cfg.infer.engine, "load_seconds": loaded - loading}
    return {"seconds": time.perf_counter() - start, "images": len(files), "engine": "keras"}


def forward_worker(cfg, rows, min_seconds=3.0):
    """The forward pass alone on one fixed batch of [train] batch_size random 0-255 images, per
    row: "plain" (model.predict), "keras" (predict_on_batch, as the pipeline calls it),
    "keras_xla", or an engine (its cached conversion); with the largest probability difference
    from Keras."""
    import keras
    import numpy as np
    from allseg.infer.engines import cached_engine
    from allseg.model.unet import load_trained_model
    m, batch = cfg.model, cfg.train.batch_size
    model = load_trained_model(cfg)
    model.jit_compile = False
    path = Path(cfg.train.model_dir) / "best_model.keras"
    x = np.random.default_rng(0).integers(0, 256, (batch, m.image_height, m.image_width, 3),
                                          dtype=np.uint8)
    want = model.predict_on_batch(x.astype("float32"))
    out = {}
    for row in rows:
        if row == "plain":
            run = lambda: model.predict(x.astype("float32"), verbose=0)  # noqa: E731
        elif row in ("keras", "keras_xla"):
            runner = model
            if row == "keras_xla":
                runner = keras.models.load_model(path)
                runner.jit_compile = True
            run = lambda r=runner: r.predict_on_batch(x.astype("float32"))  # noqa: E731
        else:
            engine = cached_engine(row, model, path)
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
    elif args.worker == "step":
        result = step_worker(cfg, args.approach)
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

def bench_config_file(base, path, data_dir, run_dir, train_values, infer_values=None):
    """base with training data from data_dir (Kaggle layout), outputs under run_dir, inference
    over data_dir's originals and the [train] (and [infer]) overrides given."""
    q = lambda p: f'"{Path(p).as_posix()}"'  # noqa: E731
    overrides = {"train.image_datapath": q(data_dir / "Original"),
                 "train.mask_datapath": q(data_dir / "Segmented"), "train.category": '"Early"',
                 "train.patience": "1000", "train.validation_split": "0.2",
                 "infer.images_dir": q(data_dir / "Original" / "Early"),
                 "model.show_summary": "False",
                 **{f"train.{key}": text for key, text in train_values.items()},
                 **{f"infer.{key}": text for key, text in (infer_values or {}).items()}}
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
    from allseg.data.synthetic import write_master
    done = folder / "Original" / "Early"
    if not (done.is_dir() and len(list(done.iterdir())) >= count):
        write_master(folder, per_category=count, seed=11, categories=("Early",))
    return folder


def steady_rate(result):
    """Training images/s over the epochs after the first (graph tracing, caches warming)."""
    seconds = result["epoch_seconds"][1:] or result["epoch_seconds"]
    return result["train_images"] * len(seconds) / sum(seconds)


def bench_config(name, base, n, epochs, scratch, variants, auto_engine="openvino"):
    print(f"\n== {name} config ({base.name}) on {n} and {4 * n} images ==", flush=True)
    small = make_images(scratch / f"images_{n}", n)
    large = make_images(scratch / f"images_{4 * n}", 4 * n)
    out = {"config": str(base.relative_to(ROOT)), "images": n, "epochs": epochs, "train": {},
           "memory": {}, "infer": {}}

    def config_for(tag, data_dir, train_values, infer_values=None):
        run_dir = scratch / name / tag
        return bench_config_file(base, run_dir / "bench.config", data_dir, run_dir, train_values,
                                 infer_values)

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
    rows = {**{v: (values, "keras") for v, values in variants.items()},
            **{engine: ({}, engine) for engine in ENGINE_ROWS}}
    for variant, (values, engine) in rows.items():
        cfg = config_for("infer", small, values, {"engine": f'"{engine}"'})
        result = measure("infer", "plain" if variant == "plain" else "pipeline", cfg)
        out["infer"][variant] = {"images_per_s": result["images"] / result["seconds"], **result}
        print(f"  infer {variant:13s} {out['infer'][variant]['images_per_s']:6.2f} img/s", flush=True)
    forward_rows = ["plain", "keras", *(["keras_xla"] if "pipeline_xla" in variants else []),
                    *ENGINE_ROWS]  # after the infer rows, so the engines' conversions are cached
    out["forward"] = measure("forward", ",".join(forward_rows), config_for("infer", small, {}))["rows"]
    for row, r in out["forward"].items():
        print(f"  forward alone {row:9s} {r['images_per_s']:6.2f} img/s (batch {r['batch']}, "
              f"max |p - keras| {r['max_abs_diff_vs_keras']:.1e})", flush=True)

    fwd = out["flops_forward"]
    ceiling = machine_ceiling()["gflop_per_s"]
    for part, per_image in (("train", 3 * fwd), ("step", 3 * fwd), ("infer", fwd),  # backward ~ 2x forward
                            ("forward", fwd)):
        for row in out[part].values():
            row["gflop_per_s"] = row["images_per_s"] * per_image / 1e9
            row["share_of_ceiling"] = row["gflop_per_s"] / ceiling if ceiling else None
    best = lambda part: max((v for k, v in out[part].items() if k != "plain"),  # noqa: E731
                            key=lambda row: row["images_per_s"])
    out["train_speedup"] = best("train")["images_per_s"] / out["train"]["plain"]["images_per_s"]
    # The engine "auto" picks on this machine, end to end, over plain inference.
    out["infer_engine"] = auto_engine
    auto_row = "pipeline" if auto_engine == "keras" else auto_engine
    out["infer_speedup"] = out["infer"][auto_row]["images_per_s"] / out["infer"]["plain"]["images_per_s"]
    out["infer_best_speedup"] = best("infer")["images_per_s"] / out["infer"]["plain"]["images_per_s"]
    # The most any input pipeline could buy: the fastest step alone over the plain approach.
    out["train_ceiling"] = (max(v["images_per_s"] for v in out["step"].values())
                            / out["train"]["plain"]["images_per_s"]) if out["step"] else None
    return out


def rate(row):
    """'7.06 img/s (63 GFLOP/s, 19% of ceiling)'"""
    share = row.get("share_of_ceiling")
    return (f"{row['images_per_s']:.2f} img/s ({row['gflop_per_s']:.0f} GFLOP/s"
            + (f", {100 * share:.0f}% of ceiling)" if share else ")"))


def table(results):
    lines = ["| config | measure | plain | pipeline | pipeline + XLA | best / plain |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        for part, speedup in (("train", r["train_speedup"]),):  # inference: the engine table
            cells = [rate(r[part][v]) if v in r[part] else "-" for v in VARIANTS]
            lines.append(f"| {name} | {part} | {' | '.join(cells)} | {speedup:.2f}x |")
        step = r["step"]
        if step:
            lines.append(f"| {name} | training step alone (fixed batch, no input) | "
                         f"{rate(step['plain'])} | | {rate(step['xla'])} | "
                         f"ceiling {r['train_ceiling']:.2f}x |")
        mem = r["memory"]
        lines.append(f"| {name} | peak memory, {r['images']} -> {4 * r['images']} images | "
                     f"{mem['plain']['peak_rss_mb_n']:.0f} -> {mem['plain']['peak_rss_mb_4n']:.0f} MB"
                     f" | {mem['pipeline']['peak_rss_mb_n']:.0f} -> "
                     f"{mem['pipeline']['peak_rss_mb_4n']:.0f} MB | | "
                     f"plain {mem['plain']['growth_4x']:.2f}x, pipeline {mem['pipeline']['growth_4x']:.2f}x |")
        lines.append(f"| {name} | forward GFLOP per image | {r['flops_forward'] / 1e9:.2f} | | | |")
    return "\n".join(lines) + "\n\n" + engine_table(results)


def engine_table(results):
    """Inference per engine: end to end and the forward pass alone, beside plain inference."""
    lines = ["| config | engine | end to end (read, predict, resize back, write) | "
             "forward pass alone (fixed batch) | max abs probability diff from Keras | "
             "end to end / plain |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        plain = r["infer"]["plain"]["images_per_s"]
        auto_row = "pipeline" if r["infer_engine"] == "keras" else r["infer_engine"]
        for row, label, fwd in (("plain", "plain (Keras, model.predict per image)", "plain"),
                                ("pipeline", "keras", "keras"),
                                ("pipeline_xla", "keras + XLA", "keras_xla"),
                                *((e, e, e) for e in ENGINE_ROWS)):
            if row not in r["infer"]:
                continue
            f = r["forward"].get(fwd)
            diff = f"{f['max_abs_diff_vs_keras']:.1e}" if f and row != "plain" else ""
            tag = " (auto)" if row == auto_row else ""
            lines.append(f"| {name} | {label}{tag} | {rate(r['infer'][row])} | "
                         f"{rate(f) if f else '-'} | {diff} | "
                         f"{r['infer'][row]['images_per_s'] / plain:.2f}x |")
    return "\n".join(lines)


def cpuinfo():
    """The first processor's fields in /proc/cpuinfo ({} where there is none)."""
    fields = {}
    if Path("/proc/cpuinfo").exists():
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def machine_ceiling():
    """The CPU's float32 peak from what it reports: cores x FMA lanes x 2 (an FMA is a multiply
    and an add) x FMA units per core x clock. Assumed: 2 FMA units per core, as in AMD Zen and
    Intel cores since Haswell, except 512-bit ones on Zen 4 (AMD family 25), which it runs as
    two 256-bit halves. The clock is 'cpu MHz' (what the kernel last saw; boost not included), the
    cores os.cpu_count() (logical: where they are SMT siblings the true ceiling is lower)."""
    info = cpuinfo()
    flags = set(info.get("flags", "").split())
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    isa = "AVX-512" if lanes == 16 else "AVX2" if lanes == 8 else "SSE"
    fma = "fma" in flags or lanes == 16
    units = 2
    if lanes == 16 and info.get("vendor_id") == "AuthenticAMD" and info.get("cpu family") == "25":
        units = 1  # Zen 4: 512-bit FMAs double-pumped on 256-bit units
    try:
        ghz = float(info["cpu MHz"]) / 1000
    except (KeyError, ValueError):
        ghz = None
    cores = os.cpu_count()
    flops_per_cycle = lanes * (2 if fma else 1) * units
    return {"gflop_per_s": cores * flops_per_cycle * ghz if ghz else None, "cores": cores,
            "isa": isa, "float32_lanes": lanes, "fma": fma, "fma_units_per_core": units,
            "ghz": ghz, "formula": f"{cores} cores x {lanes} lanes x {2 if fma else 1} (FMA) x "
                                   f"{units} units x {ghz:.2f} GHz" if ghz else None,
            "assumed": "2 FMA units per core (1 for 512-bit on AMD Zen 4); clock = cpu MHz"}


def machine():
    import tensorflow as tf
    cpu = cpuinfo().get("model name") or platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": [g.name for g in tf.config.list_physical_devices("GPU")],
            "tensorflow": tf.__version__, "python": platform.python_version(),
            "ceiling": machine_ceiling()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the seed config only, without XLA, on fewer images (< 5 min)")
    parser.add_argument("--images", type=int, help="N: images per training run (4N for memory)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS))
    parser.add_argument("--scratch", type=Path, default=ROOT / "bench_runs" / "throughput")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", choices=["train", "step", "save_model", "infer", "forward"],
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
    from allseg.infer.engines import choose
    auto_engine, why = choose("auto", None)
    print(f"[infer] engine = \"auto\" here: {auto_engine} ({why})")
    results = {name: bench_config(name, CONFIGS[name], n, epochs, args.scratch, variants, auto_engine)
               for name in configs}
    head = results.get("seed") or next(iter(results.values()))
    report = {"train_speedup": head["train_speedup"], "infer_speedup": head["infer_speedup"],
              "infer_engine": auto_engine, "infer_best_speedup": head["infer_best_speedup"],
              "train_ceiling": head["train_ceiling"],
              "memory_growth_4x": head["memory"]["pipeline"]["growth_4x"],
              "headline_config": "seed" if "seed" in results else configs[0],
              "quick": args.quick, "machine": machine(), "configs": results,
              "wall_seconds": time.perf_counter() - start}
    text = table(results)
    print("\n" + text)
    ceiling = report["machine"]["ceiling"]
    print(f"\nmachine ceiling {ceiling['gflop_per_s'] or 0:.0f} GFLOP/s float32 = {ceiling['formula']}"
          f" (assumed: {ceiling['assumed']})")
    print(f"train_speedup {report['train_speedup']:.2f}x, infer_speedup "
          f"{report['infer_speedup']:.2f}x ({auto_engine}, auto), memory_growth_4x {report['memory_growth_4x']:.2f} "
          f"({report['headline_config']} config); {report['wall_seconds'] / 60:.1f} min")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "throughput_quick" if args.quick else "throughput"
    from allseg.core.files import write_json, write_text
    write_json(args.out / f"{stem}.json", report)
    write_text(args.out / f"{stem}.md", text + "\n")


if __name__ == "__main__":
    main()
