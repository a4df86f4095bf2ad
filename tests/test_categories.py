"""category may be one name, a list, or "all": training and evaluation take every category named,
and summary.json breaks the scores down per category."""
import json

import pytest

from allseg.core.config import load_config
from allseg.core.errors import ConfigError
from allseg.data.pairing import category_names
from conftest import run_script, tiny_config_text


def test_all_categories_train_and_evaluate_together(tmp_path, synthetic_master):
    run_script("split_master.py", "--master", synthetic_master, "--category", "all",
               "--dest", tmp_path / "ALL", "--mini-test", tmp_path / "mini_test")
    config = tmp_path / "all.config"
    config.write_text(tiny_config_text(tmp_path, epochs="1").replace('category       = "Early"',
                                                                     'category       = "all"'))
    proc = run_script("TensorflowUNetALLTrainer.py", config)
    assert "20 pairs" in proc.stdout and "(Early, Pro)" in proc.stdout

    proc = run_script("TensorflowUNetALLEvaluator.py", config)
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert set(summary["per_category"]) == {"Early", "Pro"}
    assert {r["category"] for r in summary["per_image"]} == {"Early", "Pro"}
    for name, part in summary["per_category"].items():
        rows = [r for r in summary["per_image"] if r["category"] == name]
        assert part["num_images"] == len(rows) == 2
        assert part["mean_dice"] == pytest.approx(sum(r["dice"] for r in rows) / len(rows))
        assert f"{name:10s} mean Dice" in proc.stdout

    listed = tmp_path / "list.config"
    listed.write_text(config.read_text().replace('category       = "all"',
                                                 'category       = ["Pro", "Early"]'))
    cfg = load_config(listed)
    assert category_names(cfg.train.image_datapath, cfg.train.category) == ["Pro", "Early"]
    assert category_names(cfg.train.image_datapath, "all") == ["Early", "Pro"]


@pytest.mark.parametrize("value", ['[]', '[""]', '["Early", 3]', '""', "3"])
def test_bad_category_values_are_named(tmp_path, value):
    config = tmp_path / "bad.config"
    config.write_text(tiny_config_text(tmp_path).replace('category       = "Early"\nloss',
                                                         f'category       = {value}\nloss'))
    with pytest.raises(ConfigError, match=r"\[train\] category = .*a list of names"):
        load_config(config)
