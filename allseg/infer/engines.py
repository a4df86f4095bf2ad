"""Inference engines behind the one prediction path: Keras itself, OpenVINO and LiteRT.

An engine is anything with ``predict_on_batch(images) -> probabilities (N, H, W, 1)``, like a Keras
model, so predict.py's flips, tiling and padding run through any of them unchanged. OpenVINO and
LiteRT run a conversion of best_model.keras, made on first use and kept beside it:

    <model_dir>/best_model.openvino/{model.xml, model.bin, stamp.json}
    <model_dir>/best_model.litert/{model.tflite, stamp.json}

stamp.json holds the SHA-256 of the .keras file it was made from, the engine and its version and
the SHA-256 of each converted file. The conversion is reused while all of them still match; a
model trained again, a new engine version or a damaged file gets a fresh conversion, with a note.
Each conversion is written to a temporary folder, checked against Keras on a few images and only
then renamed into place, so a crash or a failed check never leaves a half-made cache.
"""
import hashlib
import importlib.metadata
import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from allseg.core.accel import gpu_names
from allseg.core.errors import UserError
from allseg.core.files import set_aside, sha256_file, write_json
from allseg.model.shipped import trained_model_path
from allseg.model.unet import load_trained_model

ENGINES = ("auto", "keras", "openvino", "litert")
STAMP = "stamp.json"
CHECK_IMAGES = 4
CHECK_TOLERANCE = 1e-4  # largest probability difference from Keras a conversion may show
FALL_BACK = 'set [infer] engine = "keras" to fall back'


def check_images(height, width, count=CHECK_IMAGES, seed=0):
    """Deterministic pseudo-random uint8 RGB images, 0-255 like real input."""
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


class _Engine:
    """Runs a converted model; one compiled graph per batch shape seen (callers pad batches to
    one size, so there are one or two)."""
    name = ""
    package = ""  # the pip distribution whose version the stamp records
    files = ()

    def __init__(self, folder, loss=None):
        self.folder = Path(folder)
        self.loss = loss  # the Keras model's loss, for the evaluator's figure
        self._runs = {}
        self._load()

    @classmethod
    def version(cls):
        return importlib.metadata.version(cls.package)

    @staticmethod
    def runtime():
        """What runs a conversion (openvino's module, LiteRT's Interpreter class); an ImportError
        where its package is not installed."""
        raise NotImplementedError

    def predict_on_batch(self, images):
        x = np.ascontiguousarray(images, dtype=np.float32)
        run = self._runs.get(x.shape)
        if run is None:
            run = self._runs[x.shape] = self._compile(x.shape)
        return run(x)

    predict = predict_on_batch

    def describe(self):
        return f"{self.name} {self.version()}"


class OpenVINOEngine(_Engine):
    """OpenVINO on the CPU: latency hint (all cores on one request, faster than the throughput
    hint at these batch sizes); float32 arithmetic, which it would otherwise drop to bfloat16 on
    CPUs that have it (7e-3 off Keras on a tiny test model); threads not pinned to cores, since
    a pinned thread that shares its core with another busy process stalls every layer (measured
    on 2 shared cores: 7.4 img/s pinned, 21.1 unpinned at the seed config; docs/engines.md)."""
    name, package, files = "openvino", "openvino", ("model.xml", "model.bin")
    CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
              "ENABLE_CPU_PINNING": False}

    @staticmethod
    def runtime():
        # imported here: openvino adds 0.3 s to every start, and only its engine's runs use it
        import openvino
        return openvino

    @classmethod
    def convert(cls, saved_model, out):
        ov = cls.runtime()
        # float32 weights: the default halves them to float16 on saving.
        ov.save_model(ov.convert_model(str(saved_model)), str(out / "model.xml"),
                      compress_to_fp16=False)

    def _load(self):
        self.core = self.runtime().Core()
        self.model = self.core.read_model(str(self.folder / "model.xml"))

    def _compile(self, shape):
        model = self.model.clone()
        model.reshape(list(shape))
        compiled = self.core.compile_model(model, "CPU", self.CONFIG)
        return lambda x: compiled(x)[0]


class LiteRTEngine(_Engine):
    """LiteRT (the successor of tf.lite.Interpreter) with its XNNPACK CPU kernels on all cores."""
    name, package, files = "litert", "ai-edge-litert", ("model.tflite",)

    @staticmethod
    def runtime():
        # imported here (0.01 s, so not for speed): a missing package must fail only this engine
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter

    @staticmethod
    def convert(saved_model, out):
        (out / "model.tflite").write_bytes(
            tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert())

    def _load(self):
        interpreter_class = self.runtime()
        path = str(self.folder / "model.tflite")  # not self: no cycle keeps the file open
        self._make = lambda: interpreter_class(model_path=path, num_threads=os.cpu_count())
        self._make().allocate_tensors()  # fails here on a file that is not a model

    def _compile(self, shape):
        interpreter = self._make()
        inp = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(inp, list(shape), strict=True)
        interpreter.allocate_tensors()
        out = interpreter.get_output_details()[0]["index"]

        def run(x):
            interpreter.set_tensor(inp, x)
            interpreter.invoke()
            return interpreter.get_tensor(out)  # a copy
        return run


CLASSES = {cls.name: cls for cls in (OpenVINOEngine, LiteRTEngine)}


# ---------------------------------------------------------------- the cache beside the model

def cache_folder(model_path, name):
    """Beside the model where its folder may be written; else (a read-only checkout, a shared
    install) in the user's cache folder, named after the model's path. Either way the stamp's
    SHA-256 ties the conversion to the model file's bytes."""
    model_path = Path(model_path)
    beside = model_path.with_name(f"{model_path.stem}.{name}")
    if os.access(model_path.parent, os.W_OK) and not _read_only_mount(model_path.parent):
        return beside
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "allseg"
    key = hashlib.sha256(str(model_path.resolve()).encode()).hexdigest()[:12]
    return root / f"{model_path.stem}-{key}.{name}"


def _read_only_mount(folder):
    """True on a read-only file system (root may write anywhere else, so os.access says yes)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _read_stamp(folder):
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def _cache_problem(folder, stamp, want, cls):
    """Why the cache in folder cannot be used as it is, or None when it can."""
    if stamp is None:
        return "its stamp.json is missing or unreadable"
    if stamp.get("engine") != cls.name:
        return f"it was made for engine {stamp.get('engine')!r}"
    if stamp.get("model_sha256") != want["model_sha256"]:
        return "the model file has changed since"
    if stamp.get("engine_version") != want["engine_version"]:
        return f"it was made with {cls.name} {stamp.get('engine_version')}"
    hashes = stamp.get("files") if isinstance(stamp.get("files"), dict) else {}
    for name in cls.files:
        path = folder / name
        if not path.is_file() or hashes.get(name) != sha256_file(path):
            return f"{name} is missing or damaged"
    return None


def check_against_keras(engine, model, count=CHECK_IMAGES):
    """The largest probability difference from Keras on count check images; raises a UserError
    naming the engine and the way back to Keras where it is over CHECK_TOLERANCE."""
    height, width = model.input_shape[1:3]
    images = check_images(height, width, count)
    want = np.asarray(model.predict_on_batch(images.astype(np.float32)))
    got = engine.predict_on_batch(images)
    diff = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
    if not diff <= CHECK_TOLERANCE:  # NaN included
        raise UserError(f"the {engine.describe()} conversion of the model gives probabilities up "
                        f"to {diff:.3g} away from Keras's on {count} check images (allowed "
                        f"{CHECK_TOLERANCE:g}), so it is not used: {FALL_BACK}")
    return diff


def convert(cls, model, model_path, log=print, model_sha256=None):
    """Converts model (loaded from model_path, whose SHA-256 is model_sha256) for engine cls into
    its cache folder, checked against Keras first; returns the folder."""
    folder = cache_folder(model_path, cls.name)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of our own interrupted conversion
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    try:
        saved_model = tmp / "saved_model"
        try:
            model.export(str(saved_model), format="tf_saved_model", verbose=False)
            cls.convert(saved_model, tmp)
            shutil.rmtree(saved_model)
            engine = cls(tmp)
        except Exception as exc:  # converters raise many types; the user needs the way out
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise UserError(f"converting {Path(model_path).name} for {cls.name} {cls.version()} "
                            f"failed ({type(exc).__name__}: {first}): {FALL_BACK}") from exc
        diff = check_against_keras(engine, model)
        del engine  # let go of the files before they move
        write_json(tmp / STAMP, {
            "model": Path(model_path).name,
            "model_sha256": model_sha256 or sha256_file(model_path),
            "engine": cls.name, "engine_version": cls.version(),
            "files": {name: sha256_file(tmp / name) for name in cls.files},
            "check_max_abs_diff": diff, "check_images": CHECK_IMAGES,
            "made": time.strftime("%Y-%m-%d %H:%M:%S")})
        old = None
        if folder.exists() or folder.is_symlink():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old is not None and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        elif old is not None:
            old.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"Converted {Path(model_path).name} for {cls.name} {cls.version()} into {folder} in "
        f"{time.perf_counter() - start:.1f} s; largest probability difference from Keras on "
        f"{CHECK_IMAGES} check images: {diff:.2g}")
    return folder


def cached_engine(name, model, model_path, log=print):
    """The engine `name` running model's conversion: the cached one beside model_path where it
    is still the model's and intact, a fresh one otherwise (with a note saying why)."""
    cls = CLASSES[name]
    folder = cache_folder(model_path, name)
    want = {"model_sha256": sha256_file(model_path), "engine_version": cls.version()}
    if folder.exists() or folder.is_symlink():
        stamp = _read_stamp(folder) if folder.is_dir() else None
        problem = _cache_problem(folder, stamp, want, cls)
        if problem is None:
            try:
                return cls(folder, model.loss)
            except Exception as exc:  # a file the engine cannot read: not trusted, rebuilt
                problem = f"{cls.name} cannot load it ({type(exc).__name__})"
        if stamp is None or stamp.get("engine") != name:
            # Not recognisably ours: kept under another name rather than deleted.
            log(f"note: {folder} is not a usable {name} conversion ({problem}); kept it as "
                f"{set_aside(folder)} and converting again")
        else:
            log(f"note: not using the cached conversion in {folder}: {problem}; converting again")
    convert(cls, model, model_path, log, want["model_sha256"])
    return cls(folder, model.loss)


# ---------------------------------------------------------------- choosing one

def choose(setting, model):
    """(engine name, why) for the [infer] engine setting: "auto" takes the fastest measured for
    the hardware found (OpenVINO on a CPU, Keras on a GPU)."""
    if setting != "auto":
        return setting, "set in the config"
    gpus = gpu_names()
    if gpus:
        return "keras", f"auto: GPU ({', '.join(gpus)})"
    policy = getattr(getattr(model, "dtype_policy", None), "name", "float32")
    if policy != "float32":  # float16 arithmetic that a float32 conversion would not match
        return "keras", f"auto: CPU, but the model computes in {policy}"
    try:
        OpenVINOEngine.version()
    except importlib.metadata.PackageNotFoundError:
        return "keras", "auto: CPU, but openvino is not installed (pip install -r requirements.txt)"
    return "openvino", "auto: CPU, no GPU visible"


def load_predictor(cfg, model=None, log=print):
    """What predicts for cfg: its trained Keras model, or the [infer] engine running a conversion
    of it. Prints which engine runs and why."""
    model = model or load_trained_model(cfg)
    name, why = choose(cfg.infer.engine, model)
    if name == "keras":
        log(f"Inference engine: keras {keras.__version__} ({why})")
        return model
    cls = CLASSES[name]
    try:
        cls.version()
        cls.runtime()
    except ImportError as exc:
        raise UserError(f"[infer] engine = \"{name}\" needs the {cls.package} package ({exc}): "
                        f"pip install -r requirements.txt, or {FALL_BACK}") from None
    model_path = trained_model_path(cfg)
    engine = cached_engine(name, model, model_path, log)
    log(f"Inference engine: {engine.describe()} ({why})")
    return engine
