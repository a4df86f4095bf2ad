"""The trained model as a TensorFlow SavedModel, as TFLite (float32 and float16) and as OpenVINO
IR, for serving, for phones or embedded boards and for CPUs; all take raw 0-255 RGB at the model's
size, like the .keras."""
import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from allseg.cells.instances import cell_settings, median_cell_diameter
from allseg.core.errors import UserError
from allseg.core.files import make_folder, set_aside, write_bytes, write_text
from allseg.data.dataset import ALLDataset
from allseg.data.images import read_mask, resize_mask
from allseg.infer.engines import OpenVINOEngine
from allseg.model import saving

EXPORT_DIR = "export"


def tflite_bytes(saved_model_dir, float16=False):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if float16:  # weights stored as float16: half the size, computed in float32 on most CPUs
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def export_model(model, model_dir):
    """Writes <model_dir>/export/{saved_model/, model_float32.tflite, model_float16.tflite,
    openvino/model.xml (+ .bin)}; an earlier export folder is renamed, not replaced. Returns the
    paths written."""
    out = Path(model_dir) / EXPORT_DIR
    if out.exists():
        print(f"Kept the previous export as {set_aside(out)}")
    tmp = Path(model_dir) / f".{EXPORT_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of our own interrupted export
    tmp.mkdir(parents=True)
    model.export(str(tmp / "saved_model"), format="tf_saved_model", verbose=False)
    for name, half in (("model_float32.tflite", False), ("model_float16.tflite", True)):
        write_bytes(tmp / name, tflite_bytes(tmp / "saved_model", half))
    (tmp / "openvino").mkdir()
    OpenVINOEngine.convert(tmp / "saved_model", tmp / "openvino")  # float32, as the engine runs it
    os.replace(tmp, out)
    return {"saved_model": out / "saved_model", "tflite_float32": out / "model_float32.tflite",
            "tflite_float16": out / "model_float16.tflite", "openvino": out / "openvino" / "model.xml"}


def tflite_predict(path, images):
    """Probabilities (N, H, W) from a TFLite file, one image at a time, run by LiteRT (the
    successor of tf.lite.Interpreter, which is on its way out)."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    probs = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None].astype(np.float32))
        interpreter.invoke()
        probs.append(interpreter.get_tensor(out["index"])[0, ..., 0])
    return np.stack(probs)


def saved_model_predict(path, images):
    served = tf.saved_model.load(str(path))
    return served.serve(np.asarray(images, np.float32)).numpy()[..., 0]


def openvino_predict(path, images):
    """Probabilities (N, H, W) from an OpenVINO IR (the model.xml path), as the engine runs it."""
    return OpenVINOEngine(Path(path).parent).predict_on_batch(images)[..., 0]


def save_for_inference(model, cfg, path):
    """Saves model to path (a .keras file) without its optimizer's state, which only training
    needs (Adam keeps two more copies of every weight), with the loss and metrics it trained
    with, so it reloads in safe mode and the evaluator scores it as before; cfg's file is copied
    beside it as <stem>.config, the settings it runs with. Returns the file's SHA-256."""
    path = Path(path)
    if path.suffix != ".keras":
        raise UserError(f"--inference-copy {path}: give a file name ending in .keras")
    make_folder(path.parent, "--inference-copy ")
    sha256 = saving.save_for_inference(model, path, cfg.train.loss)
    header = (f"; The config {path.name} was trained with, copied from {cfg.path} by export_model.py"
              " --inference-copy.\n; Its [model] section and [infer] cell keys travel with the "
              "model; its paths are the training run's.\n")
    text = Path(cfg.path).read_text(encoding="utf-8")
    learned, masks = (0.0, 0) if cfg.model.cell_diameter_px else learned_cell_diameter(cfg)
    if learned:  # [infer] cell_diameter needs it; a config that gives it already keeps its own
        header += (f"; cell_diameter_px: the median diameter of the cells in its {masks} "
                   "training masks, measured by export_model.py.\n")
        text = text.replace("[model]\n", f"[model]\ncell_diameter_px = {learned:.1f}\n", 1)
    write_text(path.with_suffix(".config"), header + text)
    return sha256


def learned_cell_diameter(cfg):
    """(median cell diameter in the model's input pixels, masks measured) over the [train]
    pairs' truth, its cells counted as [infer] counts them."""
    pairs = ALLDataset.from_config(cfg, "train").pairs
    m = cfg.model
    masks = (resize_mask(read_mask(p.mask), m.image_height, m.image_width) for p in pairs)
    return median_cell_diameter(masks, *cell_settings(cfg.infer)), len(pairs)
