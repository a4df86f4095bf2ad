"""The by-eye count mending of benchmarks/visible_misses.py: a reported figure, so its arithmetic
is pinned on a listing worked out by hand."""
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from visible_misses import count_errors, read_verdicts  # noqa: E402

CASES = [{"image": "a.jpg", "cell": 3, "kind": "true cell split", "pieces": 2},
         {"image": "a.jpg", "cell": 5, "kind": "predicted cell joins true cells", "pieces": 3},
         {"image": "b.jpg", "cell": 1, "kind": "true cell split", "pieces": 2}]
COUNTS = {"a.jpg": (10, 11), "b.jpg": (4, 5), "c.jpg": (6, 6)}  # image: (reference, predicted)


def test_count_error_is_mended_only_where_the_model_was_judged_right():
    two_thirds = round(2 / 3, 3)
    assert count_errors(COUNTS, CASES) == {
        "as scored": {"count_error": two_thirds, "count_bias": two_thirds}}
    # a.jpg: the split region holds 2 cells (+1), the joined 3 are one cell (-2): 11 - 9 = +2;
    # b.jpg: the model cut one cell, the reference stands: +1; c.jpg: 0
    mended = count_errors(COUNTS, CASES, {1: "model", 2: "model", 3: "truth"})
    assert mended["reference mended by eye"] == {"count_error": 1.0, "count_bias": 1.0}
    unclear = count_errors(COUNTS, CASES, {1: "unclear", 2: "unclear", 3: "unclear"})
    assert unclear["reference mended by eye"] == unclear["as scored"]


def test_verdicts_for_another_listing_or_with_an_unknown_side_are_refused(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("case,image,cell,right\n1,a.jpg,3,model\n2,a.jpg,5,truth\n3,b.jpg,1,unclear\n")
    assert read_verdicts(good, CASES) == {1: "model", 2: "truth", 3: "unclear"}
    other = tmp_path / "other.csv"
    other.write_text("case,image,cell,right\n1,a.jpg,4,model\n2,a.jpg,5,truth\n3,b.jpg,1,model\n")
    with pytest.raises(SystemExit, match="not this listing's"):
        read_verdicts(other, CASES)
    bad = tmp_path / "bad.csv"
    bad.write_text("case,image,cell,right\n1,a.jpg,3,both\n2,a.jpg,5,truth\n3,b.jpg,1,model\n")
    with pytest.raises(SystemExit, match="model, truth or unclear"):
        read_verdicts(bad, CASES)


def test_verdicts_on_a_misses_listing_are_refused_before_any_work(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "visible_misses.py"),
                           "--run", str(tmp_path), "--verdicts", str(tmp_path / "v.csv")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "--verdicts mends a count, so it needs --list joins" in done.stderr
