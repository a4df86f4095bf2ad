"""Which trained model a script runs: the config's own, a file named on the command line, or the
model that ships with the project (``--model pretrained``).

A model file may carry its settings in a config of the same name beside it
(``leukemia_all.keras`` with ``leukemia_all.config``): its ``[model]`` section (input size,
threshold, flips, speck removal) and its ``[infer]`` cell settings are the ones it was trained
and scored with, so they replace the command's config; the rest of that config (folders, engine,
batch size) stays the user's.
"""
import copy
from pathlib import Path

from allseg.core.cli import DEFAULT_CONFIG
from allseg.core.config import load_config
from allseg.core.errors import UserError

BEST_MODEL = "best_model.keras"
PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "pretrained"
SHIPPED_MODEL = PRETRAINED_DIR / "leukemia_all.keras"
# The [infer] keys that define a cell: they travel with the model, as its input size does.
CELL_KEYS = ("cell_min_area", "cell_split_depth", "cell_split_hole_px")
# The [infer] keys of the lab a model was fine-tuned for (its cells' size, its pixel size): they
# travel with the model where its config gives them and the run's config does not.
LAB_KEYS = ("cell_diameter", "pixel_size_um")


def trained_model_path(cfg) -> Path:
    """The model file cfg runs: the one chosen with --model, else <model_dir>/best_model.keras."""
    chosen = getattr(cfg, "model_file", None)
    return Path(chosen) if chosen else Path(cfg.train.model_dir) / BEST_MODEL


def load_for_model(config_path, choice, log=print):
    """The run's config, pointed at the model ``choice`` names (None: the config's own). Where
    the default config is not in the working folder, a model with a config beside it runs on
    that one, so --model pretrained works from any folder."""
    if choice is not None:
        checked_model_file(choice)
        own = _model_file(choice).with_suffix(".config")
        if config_path == DEFAULT_CONFIG and not Path(config_path).is_file() and own.is_file():
            cfg = choose_model(load_config(own), choice, log)
            cfg.model_config_only = True  # its folders are the training run's, not the user's
            return cfg
    return choose_model(load_config(config_path), choice, log)


def _model_file(choice):
    path = SHIPPED_MODEL if choice == "pretrained" else Path(choice)
    return path / BEST_MODEL if path.is_dir() else path


def checked_model_file(choice):
    """The model file --model names, or a UserError saying what to give."""
    path = _model_file(choice)
    if not path.is_file():
        hint = ("the shipped model is missing from this checkout: fetch the repository again"
                if choice == "pretrained" else
                "give a .keras file, a model_dir holding best_model.keras, or 'pretrained'")
        raise UserError(f"--model {choice}: no model file at {path}; {hint}")
    return path


def choose_model(cfg, choice, log=print):
    """A copy of cfg pointed at the model ``choice`` names ("pretrained", a .keras file, or a
    folder with best_model.keras), with the settings of the config beside it if there is one;
    cfg itself is left as it was (and returned as it is for choice None)."""
    if choice is None:
        return cfg
    path = checked_model_file(choice)
    cfg = copy.deepcopy(cfg)
    cfg.model_file = path
    beside = path.with_suffix(".config")
    if beside.is_file():
        own = load_config(beside)
        cfg.model = own.model
        for key in CELL_KEYS:
            setattr(cfg.infer, key, getattr(own.infer, key))
        for key in LAB_KEYS:
            if ("infer", key) in own.given and ("infer", key) not in getattr(cfg, "given", ()):
                setattr(cfg.infer, key, getattr(own.infer, key))
        log(f"Model: {path} (its own settings from {beside.name}: "
            f"{own.model.image_width}x{own.model.image_height} input, threshold "
            f"{own.model.threshold:g}, cells of at least {own.infer.cell_min_area} px)")
    else:
        log(f"Model: {path} (settings from {cfg.path})")
    return cfg
