"""The truth audit, stain normalisation and the switches that use them, on hand-built images."""
import cv2
import numpy as np
import pytest

from allseg.core.errors import DataError
from allseg.data.pairing import find_category_pairs
from allseg.data.truth_audit import audit_masks, describe_left_out, stain_score, trusted_pairs
from conftest import run_script, tiny_config_text

VIOLET, PALE = (150, 60, 170), (225, 215, 220)  # (R + B) / 2 - G = 100 and 7.5


def smear(size=100):
    """A pale background with two violet discs of radius 10 (314 px each, 6.3% together)."""
    rgb = np.full((size, size, 3), PALE, np.uint8)
    for centre in ((30, 30), (65, 70)):
        cv2.circle(rgb, centre, 10, VIOLET, -1)
    return rgb


def discs(size=100, radius=10):
    mask = np.zeros((size, size), np.uint8)
    for centre in ((30, 30), (65, 70)):
        cv2.circle(mask, centre, radius, 1, -1)
    return mask.astype(bool)


def test_stain_score_is_red_and_blue_over_green():
    assert stain_score(np.array([[VIOLET, PALE]], np.uint8)).tolist() == [[100.0, 7.5]]


def test_truth_that_matches_the_cells_passes():
    row = audit_masks(smear(), discs())
    assert row["reasons"] == []
    assert row["stain_dice"] > 0.95 and row["hole_fraction"] == 0.0


def test_empty_truth_on_a_stained_smear_is_near_empty_and_disagrees():
    row = audit_masks(smear(), np.zeros((100, 100), bool))
    assert row["truth_fraction"] == 0.0 and row["stain_fraction"] > 0.06
    assert row["reasons"] == ["near_empty", "disagrees"]


def test_truth_drawn_as_rings_is_hollow():
    rings = discs() & ~discs(radius=7)  # the inner 7-pixel discs are holes: ~half of each cell
    row = audit_masks(smear(), rings)
    assert row["hole_fraction"] > 0.4
    assert "hollow" in row["reasons"]


def test_a_blank_smear_with_blank_truth_is_not_flagged():
    row = audit_masks(np.full((100, 100, 3), PALE, np.uint8), np.zeros((100, 100), bool))
    assert row["reasons"] == [] and row["stain_dice"] == 1.0


def write_pair(root, category, name, rgb, mask):
    for role, image in (("Original", rgb), ("Segmented", np.where(mask[..., None], rgb, 0))):
        folder = root / role / category
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(image.astype(np.uint8),
                                                              cv2.COLOR_RGB2BGR))


def test_trusted_pairs_leaves_flagged_files_out_and_says_so(tmp_path, capsys):
    write_pair(tmp_path, "Pro", "good", smear(), discs())
    write_pair(tmp_path, "Pro", "empty", smear(), np.zeros((100, 100), bool))
    pairs = find_category_pairs(tmp_path / "Original", tmp_path / "Segmented", "Pro")
    kept = trusted_pairs(pairs, "training")
    assert [p.image.stem for p in kept] == ["good"]
    out = capsys.readouterr().out
    assert "Left out 1 of 2 training pairs" in out
    assert "Pro: 1 (disagrees 1, near_empty 1)" in out


def test_when_every_pair_is_flagged_the_error_says_what_to_do(tmp_path):
    write_pair(tmp_path, "Pro", "empty", smear(), np.zeros((100, 100), bool))
    pairs = find_category_pairs(tmp_path / "Original", tmp_path / "Segmented", "Pro")
    with pytest.raises(DataError, match="skip_flagged_truth = False"):
        trusted_pairs(pairs, "training")


def test_describe_left_out_counts_pairs_once_with_every_reason():
    rows = [{"category": "Pro", "reasons": ["near_empty", "disagrees"]},
            {"category": "Pro", "reasons": ["disagrees"]}, {"category": "Pre", "reasons": []}]
    assert describe_left_out(rows, 3).splitlines() == [
        "Left out 2 of 3 pairs whose truth the audit flags:", "  Pro: 2 (disagrees 2, near_empty 1)"]


def test_stain_normalisation_makes_the_model_blind_to_a_colour_cast(tmp_path):
    """A per-channel shift of the whole smear (another stain batch or white balance) leaves the
    stain-normalised model's output as it was; the plain model's output moves. Both reload from
    their .keras files without custom objects."""
    import keras

    from allseg.model.architecture import build_unet

    rng = np.random.default_rng(0)
    image = rng.integers(60, 190, (1, 32, 32, 3)).astype(np.float32)
    cast = image + np.array([25.0, -30.0, 40.0], np.float32)  # still inside 0..255
    for normalise in (True, False):
        keras.utils.set_random_seed(1)
        model = build_unet(32, 32, base_filters=4, num_layers=2, stain_normalize=normalise)
        path = tmp_path / f"model_{normalise}.keras"
        model.save(path)
        reloaded = keras.models.load_model(path)
        a, b = reloaded.predict_on_batch(image), reloaded.predict_on_batch(cast)
        np.testing.assert_allclose(a, model.predict_on_batch(image), atol=1e-6)
        if normalise:
            np.testing.assert_allclose(a, b, atol=1e-4)
        else:
            assert np.abs(a - b).max() > 1e-3


def test_training_can_leave_flagged_truth_out(tmp_path, synthetic_master):
    run_script("split_master.py", "--master", synthetic_master, "--category", "all", "--dest",
               tmp_path / "ALL", "--mini-test", tmp_path / "mini_test")
    blank = sorted((tmp_path / "ALL" / "train" / "segmented" / "Early").iterdir())[0]
    cv2.imwrite(str(blank), np.zeros_like(cv2.imread(str(blank))))  # truth now empty
    text = tiny_config_text(tmp_path, epochs="1").replace('category       = "Early"\nloss',
                                                          'category       = "all"\nloss')
    config = tmp_path / "skip.config"
    config.write_text(text.replace("[eval]", "skip_flagged_truth = True\n\n[eval]"),
                      encoding="utf-8")
    out = run_script("TensorflowUNetALLTrainer.py", config).stdout
    assert "Early: 1 (disagrees 1, near_empty 1)" in out
    assert "Left out 0 of" in out  # the other part of the split: nothing flagged, still said


def test_repair_keeps_flagged_pairs_and_trains_them_on_the_stain_rule(tmp_path, capsys):
    from allseg.data.dataset import load_pair

    write_pair(tmp_path, "Pro", "good", smear(), discs())
    write_pair(tmp_path, "Pro", "empty", smear(), np.zeros((100, 100), bool))
    pairs = find_category_pairs(tmp_path / "Original", tmp_path / "Segmented", "Pro")
    kept = trusted_pairs(pairs, "training", repair=True)
    assert [(p.image.stem, p.truth) for p in kept] == [("empty", "stain"), ("good", "mask")]
    assert "Repaired (truth = the stain rule's cells) 1 of 2 training pairs" in capsys.readouterr().out
    _, as_filed = load_pair(kept[0].image, kept[0].mask, 100, 100)
    _, repaired = load_pair(kept[0].image, kept[0].mask, 100, 100, truth="stain")
    assert as_filed.sum() == 0
    assert dice_of(repaired[..., 0] > 0.5, discs()) > 0.95


def test_named_categories_train_on_their_mask_plus_the_stained_cells(tmp_path, capsys):
    from allseg.data.dataset import load_pair
    from allseg.data.truth_audit import add_stained_cells

    one_disc = discs() & (np.arange(100)[:, None] < 50)  # the truth misses the second cell
    write_pair(tmp_path, "Benign", "half", smear(), one_disc)
    write_pair(tmp_path, "Early", "half", smear(), one_disc)
    pairs = find_category_pairs(tmp_path / "Original", tmp_path / "Segmented", "all")
    pairs = add_stained_cells(trusted_pairs(pairs, "training", repair=True), ["Benign"], "training")
    assert [(p.category, p.truth) for p in pairs] == [("Benign", "mask+stain"), ("Early", "mask")]
    assert "stain rule's cells to the truth of 1 of 2 training pairs\n  Benign: 1" in capsys.readouterr().out
    masks = [load_pair(p.image, p.mask, 100, 100, truth=p.truth)[1][..., 0] > 0.5 for p in pairs]
    assert dice_of(masks[0], discs()) > 0.95      # both cells
    assert np.array_equal(masks[1], one_disc)     # as filed


def test_add_stained_cells_keeps_a_repaired_pair_on_the_stain_rule(tmp_path):
    from allseg.data.truth_audit import add_stained_cells

    write_pair(tmp_path, "Benign", "empty", smear(), np.zeros((100, 100), bool))
    pairs = find_category_pairs(tmp_path / "Original", tmp_path / "Segmented", "Benign")
    pairs = add_stained_cells(trusted_pairs(pairs, "training", repair=True), ["Benign"], "training")
    assert [p.truth for p in pairs] == ["stain"]


def test_add_stained_cells_says_when_a_named_category_has_no_pairs(tmp_path, capsys):
    from allseg.data.truth_audit import add_stained_cells

    write_pair(tmp_path, "Benign", "one", smear(), discs())
    pairs = find_category_pairs(tmp_path / "Original", tmp_path / "Segmented", "Benign")
    pairs = add_stained_cells(pairs, ["benign"], "training")
    assert [p.truth for p in pairs] == ["mask"]
    assert "names 'benign', but no training pair is of that category (categories here: Benign)" \
        in capsys.readouterr().out


def dice_of(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_skip_and_repair_together_are_refused(tmp_path):
    from allseg.core.config import load_config
    from allseg.core.errors import ConfigError

    config = tmp_path / "both.config"
    config.write_text(tiny_config_text(tmp_path).replace(
        "[eval]", "skip_flagged_truth = True\nrepair_flagged_truth = True\n\n[eval]"),
        encoding="utf-8")
    with pytest.raises(ConfigError, match="choose one"):
        load_config(config)
