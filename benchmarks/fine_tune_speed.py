"""Fine-tuning's speed against an earlier commit's, side by side on one machine: the trainer's
--images form on k CellaVision crops, run alternately from a checkout of --baseline and from
this tree, each timed whole (wall) and as its card's training seconds."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import DATA, ROOT, parse, parser, write_results

BASELINE = "f85b806"  # the last commit with fine-tuning's own training loop


def lab_folder(data, k, scratch):
    """scratch/lab/{images,masks}: links to k crops drawn with seed 0 (the learning curve's)."""
    images = sorted((data / "images").iterdir())
    chosen = [images[i] for i in sorted(np.random.default_rng(0).permutation(len(images))[:k])]
    lab = scratch / f"lab{k}"
    for part in ("images", "masks"):
        (lab / part).mkdir(parents=True, exist_ok=True)
    for image in chosen:
        mask = next((data / "masks").glob(image.stem + ".*"))
        for link, target in ((lab / "images" / image.name, image), (lab / "masks" / mask.name, mask)):
            if not link.exists():
                link.symlink_to(target.resolve())
    return lab


def checkout(rev, scratch):
    """A worktree of rev in scratch (made once)."""
    tree = scratch / f"tree-{rev}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
                       check=True)
    return tree


def timed_run(tree, lab, output):
    """(wall seconds, the card's training seconds) of one fine-tune from the shipped model."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(tree / "TensorflowUNetALLTrainer.py"), "--images",
                    str(lab / "images"), "--masks", str(lab / "masks"), "--output", str(output)],
                   cwd=tree, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    facts = json.loads((output / "held_out_scores.json").read_text(encoding="utf-8"))
    return wall, facts["train_seconds"], facts["fine_tuned_scores"]["whole_cell_dice"]


def main():
    p = parser(__doc__, data=DATA / "wbc-cellavision", scratch="fine_tune_speed", assets=False)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--baseline", default=BASELINE)
    p.add_argument("--repeats", type=int, default=1)
    args = parse(p)
    lab = lab_folder(args.data, args.k, args.scratch)
    trees = {args.baseline: checkout(args.baseline, args.scratch), "this tree": ROOT}
    rows = []
    for repeat in range(args.repeats):
        for name, tree in trees.items():
            out = args.scratch / f"out-{repeat}-{name.replace(' ', '_')}"
            wall, train, dice = timed_run(tree, lab, out)
            rows.append({"version": name, "repeat": repeat, "wall_s": round(wall, 1),
                         "train_s": train, "held_out_whole_cell_dice": dice})
            print(json.dumps(rows[-1]), flush=True)
    text = ["| version | run | wall s | training s | held-out whole-cell Dice |", "|---|---|---|---|---|"]
    text += [f"| {r['version']} | {r['repeat']} | {r['wall_s']:.0f} | {r['train_s']:.0f} | "
             f"{r['held_out_whole_cell_dice']:.3f} |" for r in rows]
    base = [r for r in rows if r["version"] == args.baseline]
    mine = [r for r in rows if r["version"] == "this tree"]
    for key in ("wall_s", "train_s"):
        ratio = np.median([b[key] for b in base]) / np.median([m[key] for m in mine])
        text.append(f"\n{key}: {args.baseline} / this tree = {ratio:.2f}x")
    write_results(args.out / "fine_tune_speed", rows, "\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
