import csv
import hashlib

import pytest

from allseg.core.errors import UserError
from allseg.data.splitting import split_master
from conftest import run_script


def snapshot(folder):
    """Every file under folder with its content hash and mtime: proves nothing changed."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                         p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_same_split_master_untouched(synthetic_master, tmp_path):
    before = snapshot(synthetic_master)
    proc = run_script("split_master.py", "--master", synthetic_master, "--dest", tmp_path / "A",
                      "--mini-test", tmp_path / "mA", "--seed", 5)
    assert "Split 12 pairs (seed 5): 10 train, 2 test" in proc.stdout
    split_master(synthetic_master, tmp_path / "B", tmp_path / "mB", seed=5)
    split_master(synthetic_master, tmp_path / "C", tmp_path / "mC", seed=6)
    assert read_rows(tmp_path / "A" / "split.csv") == read_rows(tmp_path / "B" / "split.csv")
    assert read_rows(tmp_path / "A" / "split.csv") != read_rows(tmp_path / "C" / "split.csv")
    assert snapshot(synthetic_master) == before
    train = sorted(p.name for p in (tmp_path / "A" / "train" / "original" / "Early").iterdir())
    test = sorted(p.name for p in (tmp_path / "A" / "test" / "segmented" / "Early").iterdir())
    assert len(train) == 10 and len(test) == 2 and not set(train) & set(test)
    assert sorted(p.name for p in (tmp_path / "mA").iterdir()) == test  # fewer than 10 tests


def test_split_csv_reproduces_a_given_split(synthetic_master, tmp_path):
    split_master(synthetic_master, tmp_path / "A", tmp_path / "mA", category="all", seed=1)
    run_script("split_master.py", "--master", synthetic_master, "--category", "all",
               "--split-csv", tmp_path / "A" / "split.csv", "--dest", tmp_path / "B",
               "--mini-test", tmp_path / "mB")
    assert read_rows(tmp_path / "A" / "split.csv") == read_rows(tmp_path / "B" / "split.csv")
    cats = {r["category"] for r in read_rows(tmp_path / "B" / "split.csv")}
    assert cats == {"Early", "Pro"}


def test_non_empty_destination_is_refused_then_moved_aside_with_overwrite(synthetic_master,
                                                                         tmp_path):
    dest = tmp_path / "ALL"
    dest.mkdir()
    (dest / "mine.txt").write_text("user file")
    proc = run_script("split_master.py", "--master", synthetic_master, "--dest", dest,
                      "--mini-test", tmp_path / "m", check=False)
    assert proc.returncode == 2
    assert "is not empty" in proc.stderr and "Traceback" not in proc.stderr
    split_master(synthetic_master, dest, tmp_path / "m", overwrite=True)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("ALL.previous-")]
    assert len(kept) == 1 and (kept[0] / "mine.txt").read_text() == "user file"
    assert (dest / "split.csv").exists()


def test_bad_master_and_category_get_clear_errors(synthetic_master, tmp_path):
    with pytest.raises(UserError, match="not a master dataset"):
        split_master(tmp_path, tmp_path / "A", tmp_path / "m")
    with pytest.raises(UserError, match=r"--category Pre: no such category .*found: Early, Pro"):
        split_master(synthetic_master, tmp_path / "A", tmp_path / "m", category="Pre")
    with pytest.raises(UserError, match="inside the master"):
        split_master(synthetic_master, synthetic_master / "ALL", tmp_path / "m")


def test_synthetic_master_is_deterministic_and_in_kaggle_layout(tmp_path):
    run_script("make_synthetic_master.py", "--out", tmp_path / "a", "--per-category", 2, "--seed", 9)
    run_script("make_synthetic_master.py", "--out", tmp_path / "b", "--per-category", 2, "--seed", 9)
    assert snapshot(tmp_path / "a").keys() == snapshot(tmp_path / "b").keys()
    assert [v[0] for v in snapshot(tmp_path / "a").values()] == \
        [v[0] for v in snapshot(tmp_path / "b").values()]
    for category in ("Benign", "Early", "Pre", "Pro"):
        assert len(list((tmp_path / "a" / "Original" / category).glob("*.jpg"))) == 2
        assert len(list((tmp_path / "a" / "Segmented" / category).glob("*.jpg"))) == 2
    proc = run_script("make_synthetic_master.py", "--out", tmp_path / "a", check=False)
    assert proc.returncode == 2 and "not empty" in proc.stderr
