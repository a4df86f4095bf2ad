"""Helpers the real-data benchmarks share: a scratch copy of the split, configs, timed script runs."""
import configparser
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "leukemia-early"
sys.path.insert(0, str(ROOT))


def run(script, *args):
    """Runs a project script, streaming its output; returns wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"{script} failed with exit code {proc.returncode}")
    return time.perf_counter() - start


def reference_split(data, scratch, category="Early"):
    """ALL/ in scratch, reproduced from data/split.csv by split_master.py (once)."""
    dest = Path(scratch) / "ALL"
    if not (dest / "split.csv").exists():
        run("split_master.py", "--master", data, "--category", category, "--split-csv",
            Path(data) / "split.csv", "--dest", dest, "--mini-test", Path(scratch) / "mini_test")
    return dest


def write_config(base_config, path, run_dir, all_dir, overrides=None, eval_dir=None):
    """A copy of base_config with data and output paths under run_dir and the given overrides
    ({"section.key": literal text})."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(base_config, encoding="utf-8")
    q = lambda p: f'"{Path(p).as_posix()}"'  # noqa: E731
    values = {
        "train.model_dir": q(Path(run_dir) / "models"), "train.eval_dir": q(Path(run_dir) / "eval"),
        "train.image_datapath": q(Path(all_dir) / "train" / "original"),
        "train.mask_datapath": q(Path(all_dir) / "train" / "segmented"),
        "eval.image_datapath": q(Path(eval_dir or Path(all_dir) / "test") / "original"),
        "eval.mask_datapath": q(Path(eval_dir or Path(all_dir) / "test") / "segmented"),
        "infer.images_dir": q(Path(all_dir).parent / "mini_test"),
        "infer.output_dir": q(Path(run_dir) / "mini_test_output"),
        **(overrides or {}),
    }
    for dotted, text in values.items():
        section, key = dotted.split(".")
        parser[section][key] = text
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return Path(path)


def read_summary(eval_dir):
    return json.loads((Path(eval_dir) / "summary.json").read_text())
