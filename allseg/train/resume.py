"""The unfinished-run folder: the model after the last completed epoch, so a killed run goes on.

It holds one ``epoch-NNNN.keras`` (weights, optimizer state and schedule position) and
``state.json`` naming it; both are written to a temporary name first, and state.json last, so the
folder always describes one whole epoch. The trainer removes it when a run ends.
"""
import hashlib
import json
import shutil
from pathlib import Path

import keras
import numpy as np

from allseg.core.errors import UserError
from allseg.core.files import replace_atomically, write_json

RESUME_DIR = "unfinished_run"
STATE = "state.json"


def fingerprint(cfg, data_identity=""):
    """A short hash of the [model] and [train] values, and of what identifies the data where the
    config does not (a lab's images and start model): a run only resumes under the same ones."""
    values = {s: sorted(vars(getattr(cfg, s)).items()) for s in ("model", "train")}
    if data_identity:
        values["data"] = data_identity
    return hashlib.sha256(json.dumps(values, default=str).encode()).hexdigest()[:16]


def saved_size(model):
    """About how many bytes a .keras file of model takes: its weights and optimizer state (for
    the message when a disk is too full to hold it)."""
    optimizer = getattr(model, "optimizer", None)
    variables = list(model.weights) + (list(optimizer.variables) if optimizer else [])
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def random_states(model):
    """The dropout layers' random-number states, which a .keras file does not keep; restoring
    them makes a resumed run draw the same dropout masks an uninterrupted one would."""
    return {layer.name: keras.ops.convert_to_numpy(layer.seed_generator.state).tolist()
            for layer in model.layers if getattr(layer, "seed_generator", None) is not None}


def set_random_states(model, states):
    for layer in model.layers:
        if layer.name in states:
            layer.seed_generator.state.assign(states[layer.name])


class ResumePoint(keras.callbacks.Callback):
    """Saves the resume point after every epoch; list it last, after the log and best model."""

    def __init__(self, folder, config_hash):
        super().__init__()
        self.folder = Path(folder)
        self.config_hash = config_hash

    def on_epoch_end(self, epoch, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1:04d}.keras"
        with replace_atomically(self.folder / name, lambda: saved_size(self.model)) as tmp:
            self.model.save(tmp)
        write_json(self.folder / STATE, {"completed_epochs": epoch + 1, "checkpoint": name,
                                         "config": self.config_hash,
                                         "random_states": random_states(self.model)})
        for old in self.folder.glob("epoch-*.keras"):
            if old.name != name:
                old.unlink()


def load_unfinished(folder, config_hash, config_path):
    """(model, completed_epochs) from an unfinished run in folder, or None when there is none."""
    folder = Path(folder)
    state_path = folder / STATE
    if not state_path.exists():
        return None
    how_to_restart = f"move {folder} away to start afresh"
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        checkpoint = folder / state["checkpoint"]
        done = int(state["completed_epochs"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{state_path} is damaged ({exc}); {how_to_restart}") from None
    if state.get("config") != config_hash:
        raise UserError(f"{folder} holds an unfinished run made with other [model] or [train] "
                        f"values than {config_path} has now: run it with the config it started "
                        f"with to finish it, or {how_to_restart}")
    try:
        model = keras.models.load_model(checkpoint)
    except Exception as exc:  # a missing or damaged file: Keras raises many types
        raise UserError(f"{checkpoint} cannot be loaded ({type(exc).__name__}); "
                        f"{how_to_restart}") from None
    set_random_states(model, state.get("random_states", {}))
    return model, done


def finish(folder):
    """Removes the resume folder once its run has ended (it holds only the trainer's own files)."""
    shutil.rmtree(folder, ignore_errors=True)
