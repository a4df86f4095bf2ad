"""Inference with a model that learned nuclei (num_classes = 2): nuclei masks, N:C ratios in the
cells CSV, nuclei outlined on the overlay, and for every model a QuPath GeoJSON of the cells.

The models here read their answer off the image: a cell is drawn red (200, 40, 40), its nucleus
yellow (200, 200, 40), so channel 0 is "red > 127" and channel 1 "green > 127". Every expected
cell, nucleus and ratio is then known from the discs drawn, with no training."""
import csv
import io
import json

import cv2
import numpy as np
import pytest

from conftest import run_script, tiny_config_text

from allseg.cells.instances import MEASUREMENTS
from allseg.core.config import load_config
from allseg.core.errors import ConfigError, UserError
from allseg.data.geojson import read_qupath_cells
from allseg.data.images import write_png
from allseg.infer.inference import infer, use_command_line
from allseg.infer.outputs import NUCLEUS_COLOUR

BACKGROUND, CELL, NUCLEUS = (40, 40, 40), (200, 40, 40), (200, 200, 40)
# Per image: (height, width) and its cells (row, col, radius, nucleus (drow, dcol, radius) or
# None). "small" is the model's size (predicted whole), "large" is tiled; one cell has no nucleus.
SMEARS = {
    "small": ((32, 32), [(15, 15, 9, (1, -2, 4))]),
    "large": ((96, 80), [(20, 20, 11, (0, 0, 6)), (25, 60, 9, None), (70, 30, 12, (3, 2, 5)),
                         (75, 62, 10, (-2, 0, 7))]),
}


def draw(shape, cells):
    """(rgb, cell mask, nucleus mask) of discs drawn without anti-aliasing (exact colours)."""
    rgb = np.full((*shape, 3), BACKGROUND, np.uint8)
    for row, col, radius, nucleus in cells:
        cv2.circle(rgb, (col, row), radius, CELL, -1)
        if nucleus is not None:
            drow, dcol, inner = nucleus
            cv2.circle(rgb, (col + dcol, row + drow), inner, NUCLEUS, -1)
    return rgb, rgb[..., 0] > 127, rgb[..., 1] > 127


class DiscReader:
    """An engine (predict_on_batch -> (N, H, W, C) probabilities, as predict.py calls it)
    whose cells are the red pixels and, with two classes, whose nuclei are the yellow ones."""

    def __init__(self, classes):
        self.classes = classes

    def predict_on_batch(self, images):
        x = np.asarray(images, np.float32)
        channels = [x[..., 0] > 127, x[..., 1] > 127][:self.classes]
        return np.stack(channels, axis=-1).astype(np.float32)


def write_smears(folder):
    folder.mkdir()
    expected = {}
    for stem, (shape, cells) in SMEARS.items():
        rgb, cell, nucleus = draw(shape, cells)
        write_png(folder / f"{stem}.png", rgb)
        expected[stem] = (cell, nucleus, cells)
    return expected


def config(tmp_path, classes, extra=""):
    path = tmp_path / f"c{classes}.config"
    text = tiny_config_text(tmp_path).replace("num_classes    = 1", f"num_classes    = {classes}")
    path.write_text(text + f"cell_min_area = 20\ncell_diameter = 0\n{extra}", encoding="utf-8")
    return load_config(path)


def read_png(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def read_csv(path):
    text = path.read_text(encoding="utf-8")
    return text.splitlines()[0].split(","), list(csv.DictReader(io.StringIO(text)))


def cell_row(rows, stem, row, col):
    """The cells CSV row of the cell whose bounding box holds (row, col)."""
    found = [r for r in rows if r["file"] == f"{stem}.png"
             and int(r["bbox_row0"]) <= row < int(r["bbox_row1"])
             and int(r["bbox_col0"]) <= col < int(r["bbox_col1"])]
    assert len(found) == 1, (stem, row, col, found)
    return found[0]


def check_geojson(path, labels, nucleus):
    """The GeoJSON reads back through QuPath's rules to the label PNG's cells and nuclei, and
    each cell carries its CSV row's measurements; returns the features."""
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    assert len(features) == labels.max() > 0
    assert {f["properties"]["objectType"] for f in features} == {"cell"}
    got_labels, got_nucleus = read_qupath_cells(path, *labels.shape)
    assert np.array_equal(got_labels, labels)
    if nucleus is None:
        assert got_nucleus is None and not any("nucleusGeometry" in f for f in features)
    else:
        assert np.array_equal(got_nucleus, nucleus & (labels > 0))
    return features


def test_a_two_class_model_writes_nuclei_nc_ratios_outlines_and_qupath_geojson(tmp_path):
    """Through the config's own places (each beside output_dir), with a pixel size."""
    expected = write_smears(tmp_path / "mini_test")
    cfg = config(tmp_path, 2, "pixel_size_um = 0.5\n")
    c = cfg.infer
    assert c.nuclei_dir == c.output_dir + "_nuclei" and c.geojson_dir == c.output_dir + "_geojson"
    written, _, failed = infer(cfg, DiscReader(2))
    assert len(written) == 2 and not failed

    header, rows = read_csv(tmp_path / "mini_test_output_cells.csv")
    assert header == ["file", *MEASUREMENTS, "nucleus_area_px", "nc_ratio", "area_um2",
                      "perimeter_um", "equivalent_diameter_um", "nucleus_area_um2"]
    assert len(rows) == 5
    for stem, (cell, nucleus, cells) in expected.items():
        assert np.array_equal(read_png(f"{c.output_dir}/{stem}.png"), cell * np.uint8(255))
        assert np.array_equal(read_png(f"{c.nuclei_dir}/{stem}.png"), nucleus * np.uint8(255))
        labels = read_png(f"{c.labels_dir}/{stem}.png").astype(np.int32)
        features = check_geojson(tmp_path / "mini_test_output_geojson" / f"{stem}.geojson",
                                 labels, nucleus)
        shown = read_png(f"{c.overlay_dir}/{stem}.png")[..., ::-1]  # BGR on disk
        magenta = np.all(shown == NUCLEUS_COLOUR, axis=-1)
        assert not (magenta & ~nucleus).any()  # the nuclei's outlines, nothing else
        for row, col, radius, inner in cells:
            disc = np.zeros_like(cell)
            cv2.circle(disc.view(np.uint8), (col, row), radius, 1, -1)
            nucleus_px = int(np.count_nonzero(disc & nucleus))
            assert (nucleus_px > 0) == (inner is not None)
            got = cell_row(rows, stem, row, col)
            assert int(got["area_px"]) == np.count_nonzero(disc)
            assert int(got["nucleus_area_px"]) == nucleus_px
            assert float(got["nc_ratio"]) == round(nucleus_px / np.count_nonzero(disc), 4)
            assert float(got["nucleus_area_um2"]) == pytest.approx(nucleus_px * 0.25)
            assert (magenta & disc).any() == (inner is not None)
            measured = features[int(got["cell"]) - 1]["properties"]["measurements"]
            assert measured["nc_ratio"] == float(got["nc_ratio"])
            assert ("nucleusGeometry" in features[int(got["cell"]) - 1]) == (inner is not None)
    assert 0.0 in {float(r["nc_ratio"]) for r in rows}  # the cell drawn without a nucleus


def test_a_one_class_model_writes_no_nuclei_and_the_columns_it_always_wrote(tmp_path):
    """Under --output DIR; the GeoJSON is written for every model, without nuclei here."""
    expected = write_smears(tmp_path / "mini_test")
    cfg = use_command_line(config(tmp_path, 1), output=tmp_path / "out")
    written, _, failed = infer(cfg, DiscReader(1))
    assert len(written) == 2 and not failed
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["cell_counts.csv", "cells.csv", "geojson",
                                                     "labels", "masks", "montage.png", "overlays"]
    assert not list(tmp_path.glob("*nuclei*"))
    header, rows = read_csv(out / "cells.csv")
    assert header == ["file", *MEASUREMENTS] and len(rows) == 5
    for stem, (cell, _, _) in expected.items():
        assert np.array_equal(read_png(out / "masks" / f"{stem}.png"), cell * np.uint8(255))
        labels = read_png(out / "labels" / f"{stem}.png").astype(np.int32)
        check_geojson(out / "geojson" / f"{stem}.geojson", labels, None)
        shown = read_png(out / "overlays" / f"{stem}.png")[..., ::-1]
        assert not np.all(shown == NUCLEUS_COLOUR, axis=-1).any()


@pytest.mark.parametrize("config_classes, model_classes", [(1, 2), (2, 1)])
def test_a_model_whose_outputs_are_not_the_configs_classes_is_refused(tmp_path, config_classes,
                                                                      model_classes):
    write_smears(tmp_path / "mini_test")
    cfg = use_command_line(config(tmp_path, config_classes), output=tmp_path / "out")
    with pytest.raises(UserError, match=f"the model has {model_classes} output channel.* but "
                                        rf"\[model\] num_classes = {config_classes}"):
        infer(cfg, DiscReader(model_classes))
    assert not list((tmp_path / "out" / "masks").iterdir())


def test_num_classes_other_than_1_or_2_is_refused_naming_file_section_key_value(tmp_path):
    path = tmp_path / "c.config"
    path.write_text(tiny_config_text(tmp_path).replace("num_classes    = 1", "num_classes    = 3"),
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f"{path}: [model] num_classes = 3: allowed: 1 or 2 (1: whole "
                               "cells; 2: whole cells and their nuclei)")


def save_disc_model(path):
    """A real two-output Keras model that reads the discs: one 1x1 convolution, logit
    (red - 127.5) for the cell and (green - 127.5) for the nucleus."""
    import keras

    inputs = keras.Input((32, 32, 3))
    layer = keras.layers.Conv2D(2, 1, activation="sigmoid", name="mask")
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([np.array([[[[1, 0], [0, 1], [0, 0]]]], np.float32),
                       np.array([-127.5, -127.5], np.float32)])
    model.save(path)


def test_the_infer_script_runs_a_saved_two_class_model_with_the_config_beside_it(tmp_path):
    """The user's config says one class; the model's own config, beside it, says two."""
    expected = write_smears(tmp_path / "mini_test")
    save_disc_model(tmp_path / "nuclei.keras")
    beside = tiny_config_text(tmp_path).replace("num_classes    = 1", "num_classes    = 2")
    (tmp_path / "nuclei.config").write_text(beside + "cell_min_area = 20\n", encoding="utf-8")
    user = tmp_path / "user.config"
    user.write_text(tiny_config_text(tmp_path) + 'engine = "keras"\n', encoding="utf-8")
    out = tmp_path / "out"
    proc = run_script("TensorflowUNetALLInfer.py", user, "--model", tmp_path / "nuclei.keras",
                      "--images", tmp_path / "mini_test", "--output", out)
    assert f"nuclei to {out / 'nuclei'}" in proc.stdout
    header, rows = read_csv(out / "cells.csv")
    assert header == ["file", *MEASUREMENTS, "nucleus_area_px", "nc_ratio"] and len(rows) == 5
    for stem, (cell, nucleus, _) in expected.items():
        assert np.array_equal(read_png(out / "masks" / f"{stem}.png"), cell * np.uint8(255))
        assert np.array_equal(read_png(out / "nuclei" / f"{stem}.png"), nucleus * np.uint8(255))
        labels = read_png(out / "labels" / f"{stem}.png").astype(np.int32)
        check_geojson(out / "geojson" / f"{stem}.geojson", labels, nucleus)
