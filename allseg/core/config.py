"""Reads and checks train_eval_infer.config.

Every value is parsed with ``ast.literal_eval`` (quoted strings, numbers, booleans, lists), never
executed, and checked against the schema below before any work starts. All problems in a file are
reported together, one line each, naming file, section, key, value and what is allowed.
"""
import ast
import configparser
import difflib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Optional

from allseg.core.errors import ConfigError

REQUIRED = object()  # marks the seed's keys, which every config must give


@dataclass(frozen=True)
class Key:
    kind: type            # int, float, bool or str
    default: Any = REQUIRED
    check: Optional[Callable[[Any], bool]] = None
    allowed: str = ""     # how the check reads to a user


def integer(lo, hi, default=REQUIRED):
    return Key(int, default, lambda v: lo <= v <= hi, f"an integer from {lo} to {hi}")


def number(lo, hi, default=REQUIRED, lo_open=False, hi_open=False):
    left, right = ("(" if lo_open else "["), (")" if hi_open else "]")

    def check(v):
        return (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)

    return Key(float, default, check, f"a number in {left}{lo}, {hi}{right}")


def choice(*options, default=REQUIRED):
    listed = " or ".join(f'"{o}"' for o in options)
    return Key(str, default, lambda v: v in options, f"one of {listed}")


def path(default=REQUIRED):
    return Key(str, default, lambda v: v.strip() != "", "a quoted, non-empty path")


def flag(default=REQUIRED):
    return Key(bool, default, None, "True or False")


def categories():
    """One category folder name, a list of them, or "all" (every folder found)."""
    def ok(v):
        names = v if isinstance(v, list) else [v]
        return bool(names) and all(isinstance(n, str) and n.strip() for n in names)
    return Key(object, REQUIRED, ok, 'a quoted category name, a list of names, or "all"')


def category_list():
    """A list of category folder names, possibly empty."""
    def ok(v):
        return isinstance(v, list) and all(isinstance(n, str) and n.strip() for n in v)
    return Key(object, (), ok, 'a list of quoted category names, e.g. ["Benign"], or [] for none')


def auto_flag():
    """True, False or "auto" (decided by the hardware found at run time)."""
    return Key(object, "auto", lambda v: v is True or v is False or v == "auto",
               'True, False or "auto"')


def scheduler_address():
    """A Dask scheduler's address, or "" for a cluster on this machine."""
    schemes = ("tcp://", "tls://", "ucx://", "ws://", "wss://")
    return Key(str, "", lambda v: v == "" or (v.startswith(schemes) and len(v) > 6),
               'a Dask scheduler address such as "tcp://host:8786", or "" (a cluster of '
               'this machine\'s cores)')


def size_or_auto(hi):
    """A size in pixels from 0 to hi, or "auto" (read from the images at run time)."""
    def ok(v):
        return v == "auto" or (isinstance(v, (int, float)) and not isinstance(v, bool)
                               and 0 <= v <= hi)
    return Key(object, "auto", ok, f'"auto" or a number in [0, {hi:g}]')


SCHEMA = {
    "model": {
        "image_width": integer(8, 8192),
        "image_height": integer(8, 8192),
        "image_channels": Key(int, REQUIRED, lambda v: v == 3, "3 (RGB)"),
        # The model's sigmoid outputs: 1, whole cells; 2, whole cells and their nuclei (a lab's
        # own outlines with nuclei), which inference writes as nuclei masks and N:C ratios.
        "num_classes": Key(int, REQUIRED, lambda v: v in (1, 2),
                           "1 or 2 (1: whole cells; 2: whole cells and their nuclei)"),
        "base_filters": integer(1, 256),
        "num_layers": integer(1, 8),
        "dropout_rate": number(0.0, 1.0, hi_open=True),
        "learning_rate": number(0.0, 1.0, lo_open=True),
        "show_summary": flag(),
        "activation": choice("elu", "relu", default="elu"),
        "batch_norm": flag(default=False),
        # Each image's channels scaled to zero mean and unit spread inside the model (a
        # parameter-free GroupNormalization), so smears stained or lit differently look alike
        # to it; saved models carry it.
        "stain_normalize": flag(default=False),
        # Prediction settings: evaluation and inference both use them, so their masks agree.
        "tta_flips": flag(default=False),
        "min_area": integer(0, 1_000_000, default=0),
        # A pixel is blast where the predicted probability is above this.
        "threshold": number(0.0, 1.0, default=0.5, lo_open=True, hi_open=True),
        # The size of cell the model learned: the median equivalent diameter, in its input's
        # pixels, of its training truth's cells. 0: not recorded.
        "cell_diameter_px": number(0.0, 10000.0, default=0.0),
    },
    "train": {
        "epochs": integer(1, 100000),
        "batch_size": integer(1, 4096),
        "patience": integer(1, 100000),
        "model_dir": path(),
        "eval_dir": path(),
        "image_datapath": path(),
        "mask_datapath": path(),
        "category": categories(),
        "seed": integer(0, 2**31 - 1, default=42),
        "validation_split": number(0.0, 1.0, default=0.2, lo_open=True, hi_open=True),
        "loss": choice("bce", "bce_dice", "bce_dice_per_image", default="bce"),
        "cache": flag(default=False),
        "augment_flips": flag(default=False),
        # 1: hue +-0.05 turn, saturation and contrast x0.7-1.3, brightness +-0.15, channel
        # gains x0.9-1.1; 2 doubles each range (enough to carry Early's violet to Pro's pink).
        "augment_color": number(0.0, 2.0, default=0.0),
        # Tellez et al. 2019's HED jitter: each stain's density scaled by U(1 - s, 1 + s) and
        # shifted by U(-s, s), s this value (0.05 their "light", 0.2 their "strong"). 0: off.
        "augment_stain": number(0.0, 1.0, default=0.0),
        "lr_schedule": choice("constant", "cosine", "plateau", default="constant"),
        # The U-Net paper's weight map: background pixels between two cells weigh up to
        # 1 + border_weight in the cross-entropy, falling off over border_sigma pixels. 0: off.
        "border_weight": number(0.0, 1000.0, default=0.0),
        "border_sigma": number(0.0, 1000.0, default=5.0, lo_open=True),
        # Its mirror image: cell pixels where the truth's touching cells meet (the line that
        # [infer]'s cell split draws between them) weigh up to 1 + contact_weight, so the network
        # learns to keep touching cells joined as the truth joins them. 0: off.
        "contact_weight": number(0.0, 1000.0, default=0.0),
        # Train (and validate) on the truth without its regions under this many pixels: the
        # colour threshold's specks, which no image feature determines. 0: the truth as it is.
        "truth_min_area": integer(0, 1_000_000, default=0),
        # Leave out the pairs whose truth the audit (allseg/data/truth_audit.py) flags: near-empty
        # truth on a stained smear, hollow cells, truth far from the stain rule.
        "skip_flagged_truth": flag(default=False),
        # Or keep them, with the stain rule's cells in their image as their truth.
        "repair_flagged_truth": flag(default=False),
        # Train these categories on their mask plus the stain rule's cells: where the colour
        # threshold left pale cells out and drew hollow rings (Benign), not where it merges
        # crowded cells into one (Pre).
        "add_stained_cells": category_list(),
        # Speed switches: "auto" turns them on with a GPU and off on a CPU.
        "mixed_precision": auto_flag(),
        "jit_compile": auto_flag(),
        "steps_per_execution": integer(1, 10000, default=1),
        "tensorboard": flag(default=True),
        "strategy": choice("auto", "one_device", "mirrored", "multi_worker", default="auto"),
    },
    "eval": {
        "image_datapath": path(),
        "mask_datapath": path(),
        "category": categories(),
        "skip_flagged_truth": flag(default=False),
    },
    "infer": {
        "images_dir": path(),
        "output_dir": path(),
        # By default named after output_dir, beside it: <output_dir>_overlay, ...
        "overlay_dir": path(default=None),
        "montage": path(default=None),
        "cell_counts": path(default=None),
        # Cells, for inference and evaluation alike: regions of at least cell_min_area pixels;
        # touching cells split where the distance map dips by more than cell_split_depth pixels
        # between two peaks (0: never split); holes up to cell_split_hole_px pixels inside a
        # cell do not dent that map.
        "cell_min_area": integer(1, 1_000_000, default=50),
        "cell_split_depth": number(0.0, 1000.0, default=3.0),
        "cell_split_hole_px": integer(0, 1_000_000, default=30),  # = cells.SPLIT_HOLE_PX
        # Per-cell measurements and 16-bit cell label PNGs; by default beside output_dir.
        "cells_csv": path(default=None),
        "labels_dir": path(default=None),
        # QuPath GeoJSON of each image's cells (every model), and the nuclei masks of a model
        # with two classes; by default beside output_dir.
        "geojson_dir": path(default=None),
        "nuclei_dir": path(default=None),
        # Images larger than the model's input (once resampled): True or "auto" segment them
        # at their own resolution, tile by tile; False shrinks them to the input, as the seed did.
        "tiled": auto_flag(),
        # The side of one image pixel in micrometres, when known (a calibrated microscope and
        # camera): the cells CSV then gives area_um2, perimeter_um and equivalent_diameter_um.
        # 0: unknown, pixels only.
        "pixel_size_um": number(0.0, 1000.0, default=0.0),
        # Pixels across a typical white cell in these images: each image is resampled so its
        # cells have the size the model learned ([model] cell_diameter_px), predicted tile by
        # tile, and its mask and cells brought back to the image's own size. 0: as they are.
        # "auto": the size read from a few of the images by the model itself (infer/scale.py).
        "cell_diameter": size_or_auto(10000),
        # What runs the model, for evaluation too: "auto" is OpenVINO on a CPU, Keras on a GPU.
        "engine": choice("auto", "keras", "openvino", "litert", default="auto"),
        # Whole slides (pyramidal TIFF, SVS, NDPI, ...) go window by window to a Dask cluster:
        # the one at this address, or with "" one on this machine of slide_workers processes
        # (0: one a core). docs/slides.md says how to run it on a cluster.
        "scheduler": scheduler_address(),
        "slide_workers": integer(0, 1024, default=0),
        # A window's side in pixels of the level read (and the label store's chunk): larger
        # windows waste less margin, smaller ones hold less memory a worker.
        "slide_window": integer(256, 16384, default=2048),
    },
}


def _describe(key: Key) -> str:
    return key.allowed or {int: "an integer", float: "a number", bool: "True or False",
                           str: "a quoted string"}[key.kind]


def _parse_literal(raw: str):
    try:
        return ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_A_LITERAL


_NOT_A_LITERAL = object()


def _coerce(value, key: Key):
    """The value as key.kind, or _NOT_A_LITERAL where its type is wrong."""
    if key.kind is object:
        return value
    if key.kind is bool:
        return value if isinstance(value, bool) else _NOT_A_LITERAL
    if key.kind is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NOT_A_LITERAL
    if key.kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _NOT_A_LITERAL
    return value if isinstance(value, str) else _NOT_A_LITERAL


def _nearest(name, known):
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def override(cfg, section, name, value, option):
    """Sets [section] name to a command-line value (already of the key's type), checked as the
    config file's values are; a bad one names the option and what is allowed."""
    key = SCHEMA[section][name]
    if key.check is not None and not key.check(value):
        raise ConfigError(f"{option} {value}: allowed: {_describe(key)}")
    setattr(getattr(cfg, section), name, value)


def _check_section(file, section, items, problems):
    schema = SCHEMA[section]
    values = {}
    for name, raw in items:
        where = f"{file}: [{section}] {name} = {raw}"
        if name not in schema:
            problems.append(f"{where}: unknown key{_nearest(name, list(schema))} "
                            f"(known keys: {', '.join(schema)})")
            continue
        key = schema[name]
        value = _parse_literal(raw)
        if value is _NOT_A_LITERAL:
            hint = " (put strings in quotes)" if key.kind is str else ""
            problems.append(f"{where}: not a literal value{hint}; allowed: {_describe(key)}")
            continue
        value = _coerce(value, key)
        if value is _NOT_A_LITERAL or (key.check and not key.check(value)):
            problems.append(f"{where}: allowed: {_describe(key)}")
            continue
        values[name] = value
    for name, key in schema.items():
        if name in values:
            continue
        if key.default is REQUIRED:
            if name not in dict(items):
                problems.append(f"{file}: [{section}] {name} is missing; allowed: {_describe(key)}")
        else:
            values[name] = key.default
    return values


def load_config(file) -> SimpleNamespace:
    """The checked config as ``cfg.model.image_width`` etc.; ConfigError lists every problem."""
    file = str(file)
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive, as the schema spells them
    try:
        with open(file, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    except (configparser.Error, UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        text = str(exc).strip().replace("\n", " ")
        raise ConfigError(f"{file}: cannot be read as an INI config: {text}") from None

    problems = []
    sections = {}
    for section in parser.sections():
        if section not in SCHEMA:
            problems.append(f"{file}: [{section}]: unknown section{_nearest(section, list(SCHEMA))} "
                            f"(known sections: {', '.join(SCHEMA)})")
            continue
        sections[section] = _check_section(file, section, parser.items(section), problems)
    for section in SCHEMA:
        if section not in sections:
            problems.append(f"{file}: section [{section}] is missing")
    if problems:
        raise ConfigError("\n".join(problems))

    cfg = SimpleNamespace(path=file, **{s: SimpleNamespace(**v) for s, v in sections.items()})
    # Which keys the file gives, as against defaults: a model's own config passes on only those
    cfg.given = {(s, name) for s in sections for name, _ in parser.items(s)}
    _check_across_keys(cfg)
    _derive_defaults(cfg.infer)
    return cfg


def _derive_defaults(infer):
    """Outputs that default to a place named after output_dir, so configs written before these
    keys existed keep all their outputs together."""
    base = infer.output_dir.rstrip("/\\")
    for key, suffix in (("cells_csv", "_cells.csv"), ("labels_dir", "_labels"),
                        ("overlay_dir", "_overlay"), ("montage", "_montage.png"),
                        ("cell_counts", "_cell_counts.csv"), ("geojson_dir", "_geojson"),
                        ("nuclei_dir", "_nuclei")):
        if getattr(infer, key) is None:
            setattr(infer, key, base + suffix)


def _check_across_keys(cfg):
    if cfg.train.skip_flagged_truth and cfg.train.repair_flagged_truth:
        raise ConfigError(f"{cfg.path}: [train] skip_flagged_truth = True and "
                          "repair_flagged_truth = True: choose one (leave flagged pairs out, or "
                          "train them on the stain rule's cells)")
    levels = 2 ** cfg.model.num_layers
    for name in ("image_width", "image_height"):
        size = getattr(cfg.model, name)
        if size % levels:
            raise ConfigError(
                f"{cfg.path}: [model] {name} = {size}: must be a multiple of 2**num_layers = "
                f"{levels} (num_layers = {cfg.model.num_layers}); nearest allowed: "
                f"{max(levels, round(size / levels) * levels)}")
