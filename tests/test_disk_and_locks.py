"""Full disks, unwritable places and two runs at once: one clear line, exit code 2, and no output
name that holds a partial file. Full disks are real: a small tmpfs, where the test may mount one."""
import errno
import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import keras
import pytest

from conftest import ROOT, run_script, script_process_options, tiny_config_text

import allseg.model.losses_metrics  # noqa: F401  (registers the loss, so saved models load)
from allseg.core.errors import UserError
from allseg.core.files import WriteError, write_bytes
from allseg.core.run_lock import LOCK_FILE, running_training, training_lock


@pytest.fixture
def small_disk(tmp_path):
    """mount(size) -> a folder on a tmpfs of that many bytes; skips where mounting is refused."""
    mounted = []

    def mount(size):
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=True)


def config_with(root, tmp_path, name, **places):
    """tiny_config_text(root) with the named output keys moved to other places."""
    text = tiny_config_text(root)
    keys = {"model_dir": "models", "eval_dir": "eval", "output_dir": "mini_test_output",
            "overlay_dir": "mini_test_overlay", "montage": "montage.png",
            "cell_counts": "cell_counts.csv"}
    for key, place in places.items():
        old = f'"{root.as_posix()}/{keys[key]}"'
        assert old in text, key
        text = text.replace(old, f'"{place.as_posix()}"')
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_all_outputs_whole(folder):
    """No hidden temporary file is left, and every PNG and model under folder opens."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not [p for p in files if ".tmp" in p.name], files
    for path in files:
        if path.suffix == ".png":
            assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None, path
        elif path.suffix == ".keras":
            keras.models.load_model(path)


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    target = tmp_path / "counts.csv"
    target.write_text("the previous, whole file")
    real_write = os.write

    def half_then_full(fd, data):  # what a disk that fills up mid-file does
        if len(data) > 10:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("allseg.core.files.os.write", half_then_full)
    with pytest.raises(WriteError) as caught:
        write_bytes(target, b"x" * 1000)
    message = str(caught.value)
    assert str(target) in message and "the disk is full" in message and "1000 bytes needed" in message
    assert target.read_text() == "the previous, whole file"
    assert [p.name for p in tmp_path.iterdir()] == ["counts.csv"]


def test_short_writes_are_carried_on_until_every_byte_is_written(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr("allseg.core.files.os.write", lambda fd, data: real_write(fd, bytes(data[:7])))
    data = bytes(range(256)) * 40
    write_bytes(tmp_path / "mask.png", data)
    assert (tmp_path / "mask.png").read_bytes() == data


def test_inference_on_a_full_disk_stops_with_one_line_and_no_broken_mask(tmp_path, trained,
                                                                         small_disk):
    root, _ = trained
    disk = small_disk(40 * 1024)  # room for a few small masks, not for every overlay
    config = config_with(root, tmp_path, "full.config", output_dir=disk / "out",
                         overlay_dir=disk / "overlay", montage=disk / "montage.png",
                         cell_counts=disk / "counts.csv")
    proc = run_script("TensorflowUNetALLInfer.py", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "the disk is full" in proc.stderr and "stopped at" in proc.stderr
    assert str(disk) in proc.stderr
    assert_all_outputs_whole(disk)


def test_training_on_a_full_disk_stops_with_one_line(tmp_path, trained, small_disk):
    root, _ = trained
    disk = small_disk(20 * 1024)  # smaller than the tiny model
    config = config_with(root, tmp_path, "full.config", model_dir=disk / "models",
                         eval_dir=disk / "eval")
    proc = run_script("TensorflowUNetALLTrainer.py", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"cannot write {disk / 'models' / 'best_model.keras'}: the disk is full" in proc.stderr
    assert "needed" in proc.stderr and "free" in proc.stderr
    assert_all_outputs_whole(disk)


def test_tensorboard_logs_on_a_full_disk_stop_the_run_with_one_line(tmp_path, trained, small_disk):
    root, _ = trained
    disk = small_disk(4096)
    (disk / "filler").write_bytes(b"\0" * 4096)
    config = config_with(root, tmp_path, "full.config", model_dir=tmp_path / "models",
                         eval_dir=disk / "eval")
    proc = run_script("TensorflowUNetALLTrainer.py", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "the disk is full" in proc.stderr and str(disk / "eval") in proc.stderr


def test_outputs_through_a_file_are_refused_with_the_key_named(tmp_path, trained):
    root, _ = trained
    a_file = tmp_path / "a_file"
    a_file.write_text("a file where a folder is expected")
    config = config_with(root, tmp_path, "infer.config", output_dir=a_file / "out")
    proc = run_script("TensorflowUNetALLInfer.py", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"[infer] output_dir = {a_file / 'out'}" in proc.stderr and "not a folder" in proc.stderr
    config = config_with(root, tmp_path, "train.config", model_dir=a_file / "models")
    proc = run_script("TensorflowUNetALLTrainer.py", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"[train] model_dir = {a_file / 'models'}" in proc.stderr
    assert a_file.read_text() == "a file where a folder is expected"


def test_the_run_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with training_lock(tmp_path, "first.config"):
        holder = running_training(tmp_path)
        assert holder["pid"] == os.getpid() and holder["config"] == "first.config"
        with pytest.raises(UserError) as caught:
            with training_lock(tmp_path, "second.config"):
                pass
        assert f"process {os.getpid()}" in str(caught.value) and "first.config" in str(caught.value)
    assert running_training(tmp_path) is None
    assert not (tmp_path / LOCK_FILE).exists()  # removed as the run ended


def test_a_second_trainer_on_the_same_model_dir_is_refused_and_a_stale_lock_taken_over(
        tmp_path, trained):
    root, _ = trained
    shutil.copytree(root / "ALL", tmp_path / "ALL")
    config = tmp_path / "long.config"
    config.write_text(tiny_config_text(tmp_path, epochs="8", patience="8"), encoding="utf-8")
    models = tmp_path / "models"
    models.mkdir()
    killed = {"pid": 999999, "host": "gone", "started": "2026-01-01 00:00:00", "config": "old"}
    (models / LOCK_FILE).write_text(json.dumps(killed))

    first = subprocess.Popen([sys.executable, str(ROOT / "TensorflowUNetALLTrainer.py"), str(config)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             encoding="utf-8", **script_process_options())
    try:
        deadline = time.time() + 120
        while f'"pid": {first.pid}' not in (models / LOCK_FILE).read_text():
            assert first.poll() is None and time.time() < deadline, "the first run never locked"
            time.sleep(0.2)
        second = run_script("TensorflowUNetALLTrainer.py", config, check=False)
        assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr
        assert "in use by another training run" in second.stderr
        assert f"process {first.pid}" in second.stderr
        assert "Kept the previous" not in second.stdout and "Resuming" not in second.stdout
        out, _ = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out
    assert "took over the run lock" in out and "process 999999 on gone" in out
    assert "Trained" in out
    keras.models.load_model(models / "best_model.keras")
    assert not list(models.glob("best_model.*.keras"))  # nothing was set aside by the second run


def test_inference_names_every_input_it_leaves_out(tmp_path, trained):
    root, _ = trained
    images = tmp_path / "smears"
    images.mkdir()
    for source in sorted((root / "mini_test").glob("Synthetic*.jpg"))[:2]:
        shutil.copy(source, images / source.name)
    (images / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (images / "day 2").mkdir()
    (images / "notes.txt").write_text("not an image")
    text = config_with(root, tmp_path, "x.config", overlay_dir=tmp_path / "overlay",
                       montage=tmp_path / "montage.png",
                       cell_counts=tmp_path / "counts.csv").read_text(encoding="utf-8").replace(
        f'"{root.as_posix()}/mini_test"', f'"{images.as_posix()}"')
    config = tmp_path / "smears.config"
    config.write_text(text.replace(f'"{root.as_posix()}/mini_test_output"',
                                   f'"{(tmp_path / "out").as_posix()}"'), encoding="utf-8")
    proc = run_script("TensorflowUNetALLInfer.py", config)
    assert f"{images / 'gone.jpg'} (broken link: its target {tmp_path / 'deleted.jpg'}" in proc.stdout
    assert f"{images / 'day 2'} (folder: sub-folders are not searched)" in proc.stdout
    assert f"{images / 'notes.txt'} (not an image file" in proc.stdout
    assert ("left out 3 input(s): 1 broken link, 1 folder, 1 not an image file; "
            "0 unreadable image(s)") in proc.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{p.stem}.png" for p in images.glob("Synthetic*.jpg"))
