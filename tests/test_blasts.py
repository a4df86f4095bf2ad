"""The per-cell blast call: kept as JSON beside the model, each cell's call in cells.csv, the
count per image, QuPath classes and coloured outlines; a model without one writes what it
always wrote, and a broken call file is refused by name."""
import json
import re

import numpy as np
import pytest

from conftest import ROOT, run_script
from test_nuclei_outputs import DiscReader, config, read_csv, read_png, write_smears

from allseg.cells.blast_call import BlastCall, blast_call_path, read_blast_call
from allseg.cells.cell_features import FEATURE_NAMES
from allseg.cells.instances import MEASUREMENTS, central_cell
from allseg.core.errors import DataError, UserError
from allseg.data.geojson import cells_to_geojson
from allseg.data.images import write_png
from allseg.evaluate.blast_fit import fit_blasts
from allseg.infer.inference import infer, use_command_line
from allseg.infer.outputs import BLAST_COLOUR, NORMAL_COLOUR
from allseg.model.shipped import trained_model_path

SPREAD = FEATURE_NAMES.index("density_spread")


def textured_is_blast():
    """A call that reads one number: a cell whose stain is uneven (a nucleus drawn in it) is a
    blast, an evenly stained one is not."""
    weights, mean, scale = np.zeros(len(FEATURE_NAMES)), np.zeros(len(FEATURE_NAMES)), \
        np.ones(len(FEATURE_NAMES))
    weights[SPREAD], mean[SPREAD], scale[SPREAD] = 1.0, 0.05, 0.01
    return BlastCall(tuple(mean), tuple(scale), tuple(weights), 0.0, 0.5, {"made": "by hand"})


def run_with_call(tmp_path, call_text):
    expected = write_smears(tmp_path / "mini_test")
    cfg = use_command_line(config(tmp_path, 1), output=tmp_path / "out")
    model_file = trained_model_path(cfg)
    model_file.parent.mkdir(parents=True, exist_ok=True)
    blast_call_path(model_file).write_text(call_text, encoding="utf-8")
    return expected, infer(cfg, DiscReader(1))


def test_each_cell_gets_a_call_and_each_image_a_count(tmp_path, capsys):
    expected, (written, _, failed) = run_with_call(tmp_path, textured_is_blast().to_json())
    assert len(written) == 2 and not failed
    out = tmp_path / "out"
    header, rows = read_csv(out / "cells.csv")
    assert header == ["file", *MEASUREMENTS, "blast_probability", "blast"]
    # the one cell drawn without a nucleus is the one normal cell
    calls = {(r["file"], int(r["bbox_row0"]) < 25 < int(r["bbox_row1"]) and
              int(r["bbox_col0"]) < 60 < int(r["bbox_col1"])): r["blast"] for r in rows}
    assert calls == {("small.png", False): "1", ("large.png", False): "1",
                     ("large.png", True): "0"}
    header, counts = read_csv(out / "cell_counts.csv")
    assert header[:4] == ["file", "cells", "blasts", "blast_percent"]
    assert {r["file"]: (r["blasts"], r["blast_percent"]) for r in counts} == {
        "small.png": ("1", "100.0"), "large.png": ("3", "75.0")}
    names = [f["properties"]["classification"]["name"] for f in json.loads(
        (out / "geojson" / "large.geojson").read_text(encoding="utf-8"))["features"]]
    assert sorted(names) == ["Blast", "Blast", "Blast", "Normal"]
    shown = read_png(out / "overlays" / "large.png")[..., ::-1]
    for colour in (BLAST_COLOUR, NORMAL_COLOUR):
        assert np.all(shown == colour, axis=-1).any()
    printed = capsys.readouterr().out
    assert "Blasts: 4 of 5 cells (80.0%) in 2 image(s)" in printed
    assert "fitted on cells" not in printed  # a call that does not say its cells' size


def test_cells_far_from_the_size_the_call_was_fitted_on_are_warned_of(tmp_path, capsys):
    call = textured_is_blast()
    tiny = BlastCall(call.mean, call.scale, call.weights, call.bias, call.threshold,
                     {"median_diameter_px": 4.0})
    run_with_call(tmp_path, tiny.to_json())
    printed = capsys.readouterr().out
    assert "Warning: the blast call was fitted on cells 4.0 px across" in printed
    assert "magnification" in printed


def test_a_call_made_for_other_features_is_set_aside_when_a_lab_fits_its_own(tmp_path):
    from allseg.evaluate.blast_fit import model_call
    data = json.loads(textured_is_blast().to_json())
    data["features"], model = data["features"][:-1], tmp_path / "m.keras"
    blast_call_path(model).write_text(json.dumps(data), encoding="utf-8")
    said = []
    assert model_call(model, said.append) is None
    assert "Not starting from the model's own call" in said[0]
    assert "made for other cell features" in said[0]


def test_a_model_without_a_call_writes_no_blast_columns(tmp_path):
    write_smears(tmp_path / "mini_test")
    cfg = use_command_line(config(tmp_path, 1), output=tmp_path / "out")
    infer(cfg, DiscReader(1))
    header, _ = read_csv(tmp_path / "out" / "cell_counts.csv")
    assert "blasts" not in header


@pytest.mark.parametrize("change, says", [
    (lambda d: d.update(format="something else"), "not a blast call"),
    (lambda d: d.update(features=d["features"][:-1]), "made for other cell features"),
    (lambda d: d["scale"].__setitem__(0, 0), "scale (> 0)"),
    (lambda d: d.update(threshold=1.5), "threshold between 0 and 1"),
    (lambda d: d.update(bias="0"), "finite bias"),
])
def test_a_broken_call_file_is_refused_by_name(tmp_path, change, says):
    data = json.loads(textured_is_blast().to_json())
    change(data)
    path = tmp_path / "m.blasts.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(says)) as caught:
        read_blast_call(path)
    assert str(path) in str(caught.value)


def test_a_call_reads_back_as_written(tmp_path):
    call = textured_is_blast()
    path = tmp_path / "m.blasts.json"
    path.write_text(call.to_json(), encoding="utf-8")
    assert read_blast_call(path) == call
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not a readable blast call"):
        read_blast_call(path)


# ---- a lab's own call: TensorflowUNetALLTrainer.py --cells DIR --output DIR -----------------

def cut_out(blast, seed, side=120):
    """A cell cut out onto black, as C-NMC's are: a blast's stain uneven (a grainy nucleus), a
    normal cell's even; sizes and shades vary with the seed."""
    rng = np.random.default_rng(seed)
    rgb = np.zeros((side, side, 3), np.uint8)
    radius = int(rng.integers(30, 45))
    yy, xx = np.mgrid[:side, :side]
    inside = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 <= radius ** 2
    shade = rng.uniform(0.8, 1.0)
    rgb[inside] = (np.array([150, 110, 190]) * shade).astype(np.uint8)
    if blast:
        nucleus = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 <= (radius * 0.7) ** 2
        grain = rng.uniform(0.4, 1.0, inside.shape)[nucleus, None]
        rgb[nucleus] = (np.array([90, 50, 130]) * shade * grain).astype(np.uint8)
    return rgb


def lab_cells(folder, per_class=8):
    for name, blast in (("blast", True), ("normal", False)):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            write_png(folder / name / f"{name}_{i}.png", cut_out(blast, i + 100 * blast))
    return folder


def test_a_lab_fits_its_call_and_inference_uses_it(tmp_path):
    lab_cells(tmp_path / "cells")
    proc = run_script("TensorflowUNetALLTrainer.py", "--cells", tmp_path / "cells",
                      "--output", tmp_path / "lab")
    assert "fitted, across folds" in proc.stdout and "Kept: the fitted call" in proc.stdout
    scores = json.loads((tmp_path / "lab" / "blast_scores.json").read_text(encoding="utf-8"))
    assert scores["fitted_cross_validated"]["auc"] > 0.9 and scores["start"] is None
    call = read_blast_call(tmp_path / "lab" / "best_model.blasts.json")
    assert call.about["cells"] == 16
    assert 60 <= call.about["median_diameter_px"] <= 90  # the cut-outs are 60-90 px across
    assert (tmp_path / "lab" / "best_model.keras").read_bytes() == (
        ROOT / "pretrained" / "leukemia_all.keras").read_bytes()
    # a second fit into the folder keeps the first call, and now has it to compare against
    second = run_script("TensorflowUNetALLTrainer.py", "--cells", tmp_path / "cells",
                        "--output", tmp_path / "lab", "--model", tmp_path / "lab")
    assert "Kept the earlier blast call" in second.stdout
    assert len(list(tmp_path.glob("lab/earlier-*/best_model.blasts.json"))) == 1
    assert "start (the model's own call)   " in second.stdout


@pytest.mark.parametrize("arrange, says", [
    (lambda d: None, "no such folder"),
    (lambda d: (d / "blast").mkdir(parents=True), "is missing"),
    (lambda d: [(d / n).mkdir(parents=True) for n in ("blast", "normal")], "holds no images"),
])
def test_a_cells_folder_without_both_classes_is_refused(tmp_path, arrange, says):
    arrange(tmp_path / "cells")
    with pytest.raises(UserError, match=says):
        fit_blasts(tmp_path / "cells", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_too_few_cells_of_a_class_are_refused(tmp_path):
    lab_cells(tmp_path / "cells", per_class=2)
    with pytest.raises(UserError, match="fewer than 3 blast cells"):
        fit_blasts(tmp_path / "cells", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_image_with_no_cell_at_its_centre_is_named(tmp_path):
    cells = lab_cells(tmp_path / "cells", per_class=3)
    write_png(cells / "normal" / "glass.png", np.full((120, 120, 3), 235, np.uint8))
    with pytest.raises(DataError, match=r"no cell at the centre of .*glass\.png"):
        fit_blasts(cells, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_central_cell_is_the_one_under_the_centre_or_the_nearest_within_reach():
    labels = np.zeros((100, 100), np.int32)
    labels[40:60, 40:60], labels[0:10, 0:10] = 2, 1
    assert central_cell(labels) == 2
    labels[labels == 2] = 0
    labels[55:70, 55:70] = 3  # its centroid 17 px from the centre, within a quarter of 100
    assert central_cell(labels) == 3
    labels[labels == 3] = 0
    assert central_cell(labels) == 0  # the corner cell is too far to be the one labelled


def qupath_folder(folder, rename=None):
    """Two images of eight cells each, in the GeoJSON the infer script writes for a model with a
    call (classes Blast and Normal), as a lab would correct it in QuPath and export it again."""
    folder.mkdir()
    for image in range(2):
        rgb = np.full((240, 480, 3), 235, np.uint8)
        labels = np.zeros((240, 480), np.int32)
        rows = []
        for n in range(8):
            blast, top, left = n % 2 == 0, 120 * (n // 4), 120 * (n % 4)
            cell = cut_out(blast, 10 * image + n)
            inside = cell.max(axis=-1) > 0
            rgb[top:top + 120, left:left + 120][inside] = cell[inside]
            labels[top:top + 120, left:left + 120][inside] = n + 1
            rows.append({"cell": n + 1, "blast": int(blast)})
        collection = cells_to_geojson(labels, f"field{image}", None, rows)
        if rename:
            collection["features"][0]["properties"]["classification"]["name"] = rename
        write_png(folder / f"field{image}.png", rgb)
        (folder / f"field{image}.geojson").write_text(json.dumps(collection), encoding="utf-8")
    return folder


def test_cells_classified_in_qupath_fit_the_call(tmp_path):
    facts = fit_blasts(qupath_folder(tmp_path / "fields"), tmp_path / "out")
    assert facts["fitted_cross_validated"]["cells"] == 16
    assert facts["fitted_cross_validated"]["blasts"] == 8
    assert facts["fitted_cross_validated"]["auc"] > 0.9


def test_a_qupath_class_the_call_does_not_know_is_named(tmp_path):
    folder = qupath_folder(tmp_path / "fields", rename="Neutrophil")
    with pytest.raises(DataError, match=r"field0\.geojson: feature 1 is classified 'Neutrophil'"):
        fit_blasts(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_slide_levels_cells_are_sized_in_the_slides_own_pixels():
    """A slide read at a downsampled level: the call sizes its cells in level-0 pixels, as the
    cells it was fitted on were sized in their images' own pixels."""
    from allseg.cells.blast_call import call_cells
    size = FEATURE_NAMES.index("log_diameter_px")
    weights, mean, scale = np.zeros(len(FEATURE_NAMES)), np.zeros(len(FEATURE_NAMES)), \
        np.ones(len(FEATURE_NAMES))
    weights[size], mean[size] = 1.0, np.log(40)  # a cell 40 px across: p = 0.5
    call = BlastCall(tuple(mean), tuple(scale), tuple(weights), 0.0)
    labels = np.zeros((60, 60), np.int32)
    labels[20:30, 20:30] = 1  # about 11 px across
    rgb = np.full((60, 60, 3), 200, np.uint8)
    as_read = call_cells(call, rgb, labels)[1]
    at_level_zero = call_cells(call, rgb, labels, step=4.0)[1]
    diameter = np.sqrt(4 * 100 / np.pi)
    assert as_read == pytest.approx(1 / (1 + 40 / diameter), abs=1e-4)
    assert at_level_zero == pytest.approx(1 / (1 + 40 / (4 * diameter)), abs=1e-4)
