"""Checks on the real Early class where ../shared/data/leukemia-early is present; skipped elsewhere."""
import csv

from allseg.data.images import read_mask
from allseg.data.pairing import find_pairs
from allseg.data.splitting import split_master
from conftest import REAL_DATA, needs_real_data

pytestmark = needs_real_data()


def test_all_985_real_pairs_pair_up_and_masks_are_plausible():
    pairs = find_pairs(REAL_DATA / "Original", REAL_DATA / "Segmented", "Early")
    assert len(pairs) == 985
    mask = read_mask(pairs[0].mask)
    assert mask.shape == (224, 224)
    assert 0.01 < mask.mean() < 0.5  # some cells, mostly background


def test_reference_split_reproduces_788_train_197_test(tmp_path):
    plan, csv_path, chosen = split_master(REAL_DATA, tmp_path / "ALL", tmp_path / "mini",
                                          split_csv=REAL_DATA / "split.csv")
    assert len(plan["Early"]["train"]) == 788 and len(plan["Early"]["test"]) == 197
    with open(REAL_DATA / "split.csv", newline="") as handle:
        reference = {r["filename"]: r["split"] for r in csv.DictReader(handle)}
    with open(csv_path, newline="") as handle:
        written = {r["filename"]: r["split"] for r in csv.DictReader(handle)}
    assert written == reference
    assert len(list((tmp_path / "ALL" / "test" / "segmented" / "Early").iterdir())) == 197
    assert len(chosen) == 10 and all(reference[p.name] == "test" for p in chosen)
