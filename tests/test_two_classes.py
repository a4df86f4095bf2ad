"""num_classes = 2 from a config: the config-driven trainer learns whole cells and nuclei from
Kaggle-layout folders of three-level masks, the evaluator scores both, and what cannot be
trained that way is refused before anything is written."""
import json

import cv2
import numpy as np
import pytest

from conftest import run_script, tiny_config_text

from allseg.cells.matching import match_cells, nc_errors
from allseg.data.synthetic import make_smear


def write_three_level_split(root, per_part=(8, 4), binary=False):
    """ALL/{train,test}/{original,segmented}/Early of synthetic smears, 64 px, their masks
    0 background, 128 cytoplasm, 255 nucleus (each cell shrunk by 3 px); binary=True: 0/255."""
    for part, count in zip(("train", "test"), per_part):
        images = root / "ALL" / part / "original" / "Early"
        masks = root / "ALL" / part / "segmented" / "Early"
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        for i in range(count):
            rgb, _, cells = make_smear(np.random.default_rng([part == "test", i]), "Early", 64)
            nuclei = cv2.erode(cells.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            mask = np.where(cells, 255 if binary else 128, 0)
            if not binary:
                mask[nuclei] = 255
            cv2.imwrite(str(images / f"s{i:02d}.png"), rgb[..., ::-1])
            cv2.imwrite(str(masks / f"s{i:02d}.png"), mask.astype(np.uint8))


def two_class_config(root, extra=""):
    text = tiny_config_text(root).replace("num_classes    = 1", "num_classes    = 2")
    text = text.replace("[eval]", extra + "\n[eval]")
    path = root / "two.config"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_config_trainer_learns_cells_and_nuclei_and_the_evaluator_scores_both(tmp_path):
    import keras

    write_three_level_split(tmp_path)
    config = two_class_config(tmp_path)
    run_script("TensorflowUNetALLTrainer.py", config)
    model = keras.models.load_model(tmp_path / "models" / "best_model.keras", compile=False)
    assert model.output_shape[-1] == 2

    proc = run_script("TensorflowUNetALLEvaluator.py", config)
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text(encoding="utf-8"))
    nuclei, rows = summary["nuclei"], summary["per_image"]
    assert len(rows) == 4 and all("nucleus" in r for r in rows)
    assert nuclei["mean_dice"] == pytest.approx(np.mean([r["nucleus"]["dice"] for r in rows]))
    tp, fp, fn = (sum(r["nucleus"][k] for r in rows) for k in ("tp", "fp", "fn"))
    assert nuclei["pooled_dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1)
    # one N:C error per whole cell matched one to one
    assert nuclei["matched_cells"] == summary["cells"]["tp"]
    assert "Nuclei: mean Dice" in proc.stdout


def write_apart_cells(folder):
    """Three-level masks of three discs that touch nothing, so the truth's cells are the same
    whether counted as the evaluator counts a Kaggle mask or read as a lab's outlines."""
    for path in sorted(folder.glob("*.png")):
        mask = np.zeros((64, 64), np.uint8)
        for centre in ((16, 16), (16, 47), (46, 32)):
            cv2.circle(mask, centre, 11, 128, -1)
            cv2.circle(mask, centre, 6, 255, -1)
        cv2.imwrite(str(path), mask)


def test_the_evaluator_and_fine_tuning_score_the_same_predictions_alike(tmp_path):
    import keras

    from allseg.core.config import load_config
    from allseg.data.lab_samples import read_samples
    from allseg.evaluate.evaluation import evaluate
    from allseg.evaluate.fine_tune import held_out_scores
    from allseg.infer.scale import resampling

    write_three_level_split(tmp_path)
    test = tmp_path / "ALL" / "test"
    write_apart_cells(test / "segmented" / "Early")
    config = tmp_path / "two.config"  # long enough to find cells, so that matching counts
    config.write_text(tiny_config_text(tmp_path, epochs="30", patience="30", learning_rate="0.01")
                      .replace("num_classes    = 1", "num_classes    = 2"), encoding="utf-8")
    run_script("TensorflowUNetALLTrainer.py", config)
    cfg = load_config(config)
    model = keras.models.load_model(tmp_path / "models" / "best_model.keras")
    summary = evaluate(cfg, model)
    samples = read_samples(test / "original" / "Early", test / "segmented" / "Early")
    scale, _ = resampling(cfg, model, [test / "original" / "Early" / s.name for s in samples])
    held = held_out_scores(model, cfg, samples, scale)

    for mine, theirs in zip(held["per_image"], summary["per_image"], strict=True):
        assert mine["image"] == theirs["file"]
        assert mine["whole_cell_dice"] == theirs["dice"]
        assert mine["nucleus_dice"] == theirs["nucleus"]["dice"]
        assert (mine["cells_true"], mine["cells_predicted"], mine["cells_found"]) == (
            theirs["cells"]["n_true"], theirs["cells"]["n_pred"], theirs["cells"]["tp"]) == (
            3, theirs["cells"]["n_pred"], theirs["cells"]["tp"])
    assert held["whole_cell_dice"] == summary["mean_dice"]
    assert held["found"] == summary["cells"]["recall"]
    assert held["count_error"] == summary["cells"]["count_mae"]
    assert held["nucleus_dice"] == summary["nuclei"]["mean_dice"]
    assert held["nc_error"] == summary["nuclei"]["nc_error_mean"]
    assert summary["cells"]["tp"] > 0  # cells were matched, so found and N:C were compared


def test_a_two_class_config_with_masks_without_nuclei_is_refused_naming_the_file(tmp_path):
    write_three_level_split(tmp_path, binary=True)
    proc = run_script("TensorflowUNetALLTrainer.py", two_class_config(tmp_path), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    message = proc.stdout + proc.stderr
    assert "s00.png: binary 0/255 or 0/1" in message and "num_classes = 2" in message
    assert not (tmp_path / "models" / "best_model.keras").exists()


def test_a_two_class_config_with_one_class_truth_repairs_is_refused(tmp_path):
    write_three_level_split(tmp_path, per_part=(2, 1))
    config = two_class_config(tmp_path, "border_weight = 10.0")
    proc = run_script("TensorflowUNetALLTrainer.py", config, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert (f"{config}: [train] border_weight = 10.0: works on one-class masks only"
            in proc.stdout + proc.stderr)


def test_nc_errors_compare_each_matched_cells_nucleus_share():
    true = np.zeros((20, 40), np.int32)
    true[2:12, 2:12], true[2:12, 20:30] = 1, 2          # two cells of 100 px
    true_nucleus = np.zeros_like(true, bool)
    true_nucleus[2:7, 2:12] = True                       # cell 1: N:C 0.5; cell 2: none
    pred = np.zeros_like(true)
    pred[2:12, 20:30], pred[2:12, 2:12] = 1, 2           # the same cells, numbered the other way
    pred_nucleus = np.zeros_like(true_nucleus)
    pred_nucleus[2:4, 2:12] = pred_nucleus[2:5, 20:30] = True   # N:C 0.2 and 0.3
    match = match_cells(true, pred)
    errors = dict(zip([t for t, _, _ in match["pairs"]],
                      nc_errors(true, true_nucleus, pred, pred_nucleus, match["pairs"])))
    assert errors == pytest.approx({1: 0.3, 2: 0.3})
