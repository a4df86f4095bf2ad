import pytest

from allseg.core.config import load_config
from allseg.core.errors import ConfigError
from conftest import ROOT, tiny_config_text


def write(tmp_path, text, name="c.config"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path, text):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


def test_shipped_seed_config_loads_with_its_values():
    cfg = load_config(ROOT / "train_eval_infer.config")
    assert (cfg.model.image_width, cfg.model.image_height, cfg.model.base_filters,
            cfg.model.num_layers) == (256, 256, 16, 6)
    assert cfg.model.dropout_rate == 0.08 and cfg.model.show_summary is True
    assert cfg.train.model_dir == "./models" and cfg.train.category == "Early"
    assert cfg.infer.output_dir == "./mini_test_output"
    # keys beyond the seed's get their documented defaults
    assert (cfg.train.seed, cfg.train.validation_split, cfg.train.loss) == (42, 0.2, "bce")


def test_demo_config_loads():
    cfg = load_config(ROOT / "configs" / "demo.config")
    assert cfg.train.loss == "bce_dice"


def test_all_categories_config_loads_with_the_chosen_settings():
    # the settings docs/results.md chose on validation ("Every category, every stain")
    cfg = load_config(ROOT / "configs" / "all_cpu.config")
    assert cfg.train.category == cfg.eval.category == "all"
    assert cfg.train.repair_flagged_truth and not cfg.train.skip_flagged_truth
    assert cfg.model.stain_normalize is False and cfg.train.augment_color == 0.0
    assert cfg.eval.skip_flagged_truth
    assert (cfg.train.border_weight, cfg.train.border_sigma) == (20.0, 5.0)
    assert cfg.train.add_stained_cells == ["Benign"]


@pytest.mark.parametrize("name", ["early_cpu.config", "early_cpu_bf12.config"])
def test_other_shipped_configs_load(name):
    assert load_config(ROOT / "configs" / name).train.category == "Early"


def test_value_that_would_run_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    attack = f'__import__("os").system("touch {marker}")'
    text = tiny_config_text(tmp_path).replace('category       = "Early"', f"category = {attack}", 1)
    message = error_for(tmp_path, text)
    assert "[train] category" in message and "not a literal" in message
    assert not marker.exists()


@pytest.mark.parametrize("old, new, expected", [
    ("base_filters   = 4", "base_filters   = 0", "[model] base_filters = 0: allowed: an integer from 1 to 256"),
    ("base_filters   = 4", "base_filters   = 4.5", "[model] base_filters = 4.5: allowed: an integer"),
    ("base_filters   = 4", 'base_filters   = "4"', "[model] base_filters = \"4\": allowed: an integer"),
    ("dropout_rate   = 0.05", "dropout_rate   = 1.5", "[model] dropout_rate = 1.5: allowed: a number in [0.0, 1.0)"),
    ("show_summary   = False", "show_summary   = yes", "[model] show_summary = yes: not a literal value"),
    ('loss           = "bce_dice"', 'loss           = "focal"', 'allowed: one of "bce" or "bce_dice"'),
    ("batch_size     = 4", "batchsize = 4", "unknown key; did you mean 'batch_size'?"),
    ("batch_size     = 4", "batch_size     = 4\naugment_color = 2.5",
     "[train] augment_color = 2.5: allowed: a number in [0.0, 2.0]"),
    ("batch_size     = 4", "batch_size     = 4\nskip_flagged_truth = 1",
     "[train] skip_flagged_truth = 1: allowed: True or False"),
    ("show_summary   = False", "show_summary   = False\nthreshold = 1.0",
     "[model] threshold = 1.0: allowed: a number in (0.0, 1.0)"),
    ("show_summary   = False", "show_summary   = False\nstain_normalize = \"yes\"",
     "[model] stain_normalize = \"yes\": allowed: True or False"),
    ("batch_size     = 4", 'batch_size     = 4\nadd_stained_cells = "Benign"',
     '[train] add_stained_cells = "Benign": allowed: a list of quoted category names'),
    ("[infer]\n", '[infer]\ncell_diameter = "big"\n',
     '[infer] cell_diameter = "big": allowed: "auto" or a number in [0, 10000]'),
    ("[infer]\n", "[infer]\ncell_diameter = -5\n",
     '[infer] cell_diameter = -5: allowed: "auto" or a number in [0, 10000]'),
    ("[infer]\n", "[infer]\ncell_diameter = True\n",
     '[infer] cell_diameter = True: allowed: "auto" or a number in [0, 10000]'),
])
def test_each_kind_of_bad_value_gets_a_message_naming_file_section_key_value(tmp_path, old, new,
                                                                             expected):
    text = tiny_config_text(tmp_path)
    assert old in text
    message = error_for(tmp_path, text.replace(old, new, 1))
    assert str(tmp_path / "c.config") in message
    assert expected in message


def test_missing_key_and_unknown_section_are_reported_together(tmp_path):
    text = tiny_config_text(tmp_path).replace("patience       = 2\n", "") + "\n[trian]\nx = 1\n"
    message = error_for(tmp_path, text)
    assert "[train] patience is missing" in message
    assert "[trian]: unknown section; did you mean 'train'?" in message


def test_image_size_not_a_multiple_of_the_poolings_is_a_clear_error(tmp_path):
    message = error_for(tmp_path, tiny_config_text(tmp_path, image_width="34"))
    assert "[model] image_width = 34: must be a multiple of 2**num_layers = 4" in message


def test_contact_weight_without_a_cell_split_is_refused_by_training_only(tmp_path):
    from allseg.train.training import weight_map_settings
    text = tiny_config_text(tmp_path).replace("[eval]", "contact_weight = 10.0\n\n[eval]")
    settings = weight_map_settings(load_config(write(tmp_path, text)))
    assert settings[3:5] == (10.0, 3.0)               # contact weight, the [infer] split depth
    unsplit = load_config(write(tmp_path, text + "cell_split_depth = 0.0\n"))  # loads: eval may
    with pytest.raises(ConfigError) as info:
        weight_map_settings(unsplit)
    assert "[train] contact_weight = 10 needs [infer] cell_split_depth > 0" in str(info.value)


def test_missing_or_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.config")
    message = error_for(tmp_path, "just words, no section\n")
    assert "cannot be read as an INI config" in message
