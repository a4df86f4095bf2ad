import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "leukemia-early"

sys.path.insert(0, str(ROOT))

# The tests run the same wherever they are started from: Keras on TensorFlow whatever backend the
# caller's shell names, and no cluster description leaking in from it (it would make the trainer
# wait for workers that do not exist).
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.pop("TF_CONFIG", None)


def _default_sigint():
    """A process started in the background of a shell inherits SIGINT as ignored; Python then
    installs no KeyboardInterrupt handler and a test's Ctrl-C would be lost. Scripts started by
    the tests get the default disposition back, as a terminal would give them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def script_process_options():
    """subprocess keyword arguments for running a project script as a user at a terminal would:
    from the repository root, SIGINT delivered, progress printed a line per epoch (CI=1), UTF-8
    output whatever the caller's locale."""
    env = {**os.environ, "CI": "1", "PYTHONIOENCODING": "utf-8"}
    return {"env": env, "preexec_fn": _default_sigint}


def tiny_config_text(root, **overrides):
    """A config for tests: tiny images and network, a handful of steps."""
    values = {
        "image_width": "32", "image_height": "32", "base_filters": "4", "num_layers": "2",
        "epochs": "2", "batch_size": "4", "patience": "2", "show_summary": "False",
        "loss": '"bce_dice"', "learning_rate": "0.001",
    }
    values.update(overrides)
    r = Path(root).as_posix()
    return f"""[model]
image_width    = {values['image_width']}
image_height   = {values['image_height']}
image_channels = 3
num_classes    = 1
base_filters   = {values['base_filters']}
num_layers     = {values['num_layers']}
dropout_rate   = 0.05
learning_rate  = {values['learning_rate']}
show_summary   = {values['show_summary']}

[train]
epochs         = {values['epochs']}
batch_size     = {values['batch_size']}
patience       = {values['patience']}
model_dir      = "{r}/models"
eval_dir       = "{r}/eval"
image_datapath = "{r}/ALL/train/original/"
mask_datapath  = "{r}/ALL/train/segmented/"
category       = "Early"
loss           = {values['loss']}

[eval]
image_datapath = "{r}/ALL/test/original/"
mask_datapath  = "{r}/ALL/test/segmented/"
category       = "Early"

[infer]
images_dir     = "{r}/mini_test"
output_dir     = "{r}/mini_test_output"
overlay_dir    = "{r}/mini_test_overlay"
montage        = "{r}/montage.png"
cell_counts    = "{r}/cell_counts.csv"
"""


def run_script(script, *args, cwd=ROOT, check=True):
    """Runs one of the project's scripts as a user would; returns the CompletedProcess."""
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, encoding="utf-8",
                          **script_process_options())
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def synthetic_master(tmp_path_factory):
    from allseg.data.synthetic import write_master
    out = tmp_path_factory.mktemp("master") / "master"
    write_master(out, per_category=12, seed=3, categories=("Early", "Pro"))
    return out


def needs_real_data():
    return pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real data not found at {REAL_DATA}")


# A folder name with a space and non-ASCII letters: every script must cope with it.
ODD_DIR = "données d'essai ü"


@pytest.fixture(scope="session")
def trained(tmp_path_factory, synthetic_master):
    """A tiny model trained once, with every path under a folder with a space and non-ASCII."""
    root = tmp_path_factory.mktemp("bad") / ODD_DIR
    run_script("split_master.py", "--master", synthetic_master, "--dest", root / "ALL",
               "--mini-test", root / "mini_test")
    config = root / "tiny.config"
    config.write_text(tiny_config_text(root), encoding="utf-8")
    run_script("TensorflowUNetALLTrainer.py", config)
    return root, config
