"""How closely the exported models' masks follow the Keras model's on sample images."""
import numpy as np

from allseg.core.errors import UserError
from allseg.data.images import read_rgb, resize_image
from allseg.data.pairing import find_category_pairs
from allseg.cells.scoring import mask_dice
from allseg.infer.export import openvino_predict, saved_model_predict, tflite_predict
from allseg.infer.predict import THRESHOLD


def sample_images(cfg, count=8):
    """Up to count [eval] images at the model's size (uint8 RGB), or None where there are none."""
    try:
        files = [pair.image for pair in find_category_pairs(
            cfg.eval.image_datapath, cfg.eval.mask_datapath, cfg.eval.category)][:count]
    except UserError:
        files = []
    return np.stack([resize_image(read_rgb(p), cfg.model.image_height, cfg.model.image_width)
                     for p in files]) if files else None


def pooled_mask_dice(a, b):
    return mask_dice(b > THRESHOLD, a > THRESHOLD)


def compare_exports(cfg, model, paths):
    """{export name: Dice of its masks against the Keras model's, pooled over the samples}."""
    images = sample_images(cfg)
    if images is None:
        return {}
    keras_probs = model.predict_on_batch(images.astype(np.float32))[..., 0]
    return {
        "saved_model": pooled_mask_dice(keras_probs, saved_model_predict(paths["saved_model"], images)),
        "tflite_float32": pooled_mask_dice(keras_probs, tflite_predict(paths["tflite_float32"], images)),
        "tflite_float16": pooled_mask_dice(keras_probs, tflite_predict(paths["tflite_float16"], images)),
        "openvino": pooled_mask_dice(keras_probs, openvino_predict(paths["openvino"], images)),
    }
