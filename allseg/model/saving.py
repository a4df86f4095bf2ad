"""A trained model written for inference: one writer for the shipped model's copy
(export_model.py --inference-copy) and a lab's fine-tuned model."""
from pathlib import Path

import keras

from allseg.core.files import replace_atomically, sha256_file
from allseg.model.losses_metrics import make_loss, make_metrics


def save_for_inference(model, path, loss="bce_dice"):
    """Saves model to path (a .keras file) without its optimizer's state, which only training
    needs (Adam keeps two more copies of every weight), with the loss and metrics it trained
    with, so it reloads in safe mode and the evaluator scores it as before. Returns the file's
    SHA-256."""
    path = Path(path)
    model.compile(optimizer=keras.optimizers.SGD(), loss=make_loss(loss), metrics=make_metrics())
    with replace_atomically(path) as tmp:
        model.save(tmp)
    return sha256_file(path)
