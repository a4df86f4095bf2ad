"""A training run killed (SIGKILL) or stopped (Ctrl-C) goes on from its last completed epoch and
ends with the same history as a run that was never interrupted."""
import csv
import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_script, script_process_options, tiny_config_text

TRAINER = str(ROOT / "TensorflowUNetALLTrainer.py")


@pytest.fixture(scope="module")
def split_data(tmp_path_factory, synthetic_master):
    root = tmp_path_factory.mktemp("resume")
    run_script("split_master.py", "--master", synthetic_master, "--dest", root / "ALL",
               "--mini-test", root / "mini_test")
    return root


def make_config(split_data, run_dir, **overrides):
    text = tiny_config_text(run_dir, epochs="8", patience="3", **overrides)
    text = text.replace(f"{run_dir.as_posix()}/ALL", f"{split_data.as_posix()}/ALL")
    path = run_dir / "tiny.config"
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def log_rows(run_dir):
    with open(run_dir / "eval" / "train_log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def start_and_stop_after(config, epochs, sig):
    """Starts the trainer, waits until `epochs` epochs are saved, sends sig; returns the process."""
    state = config.parent / "models" / "unfinished_run" / "state.json"
    proc = subprocess.Popen([sys.executable, TRAINER, str(config)], cwd=ROOT, text=True,
                            encoding="utf-8", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            **script_process_options())
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(state.read_text())["completed_epochs"] >= epochs:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted:\n" + proc.stdout.read()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    return proc, out


# A high learning rate makes the validation loss jump about, so early stopping has to act.
@pytest.mark.parametrize("learning_rate", ["0.001", "0.05"])
def test_killed_and_interrupted_run_finishes_like_an_uninterrupted_one(
        tmp_path, split_data, learning_rate):
    whole = make_config(split_data, tmp_path / "whole", learning_rate=learning_rate)
    run_script("TensorflowUNetALLTrainer.py", whole)
    expected = log_rows(tmp_path / "whole")

    broken = make_config(split_data, tmp_path / "broken", learning_rate=learning_rate)
    proc, _ = start_and_stop_after(broken, 2, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert len(log_rows(tmp_path / "broken")) >= 2
    if len(expected) > 4:  # Ctrl-C during a later epoch: a clean stop, the resume point kept
        proc, out = start_and_stop_after(broken, 4, signal.SIGINT)
        assert proc.returncode == 130, out
        assert "Resuming" in out and "run the same command again" in out and "Traceback" not in out
    proc = run_script("TensorflowUNetALLTrainer.py", broken)
    assert "Resuming the unfinished run" in proc.stdout

    got = log_rows(tmp_path / "broken")
    assert [r["epoch"] for r in got] == [r["epoch"] for r in expected]  # none lost or doubled
    for mine, theirs in zip(got, expected):
        for key in ("loss", "val_loss", "val_dice"):
            assert float(mine[key]) == pytest.approx(float(theirs[key]), rel=1e-5, abs=1e-7), key
    assert not (tmp_path / "broken" / "models" / "unfinished_run").exists()
    assert not list((tmp_path / "broken" / "models").glob("best_model.2*"))  # not set aside
    assert (tmp_path / "broken" / "models" / "best_model.keras").stat().st_size > 10_000


def test_resume_under_a_changed_config_is_refused(tmp_path, split_data):
    config = make_config(split_data, tmp_path / "run")
    start_and_stop_after(config, 1, signal.SIGKILL)
    config.write_text(config.read_text().replace("base_filters   = 4", "base_filters   = 8"))
    proc = run_script("TensorflowUNetALLTrainer.py", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unfinished run" in proc.stderr and "move" in proc.stderr
    assert (tmp_path / "run" / "models" / "unfinished_run" / "state.json").exists()
