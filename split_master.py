"""Split a master dataset (Kaggle layout) into ALL/{train,test}/{original,segmented}/<Category>.

    python split_master.py --master DIR [--category Early|all] [--train-ratio 0.8] [--seed N]
                           [--split-csv FILE] [--dest ALL] [--mini-test mini_test] [--overwrite]
"""
import argparse

from allseg.core.cli import run
from allseg.data.splitting import split_master


def ratio(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be a number between 0 and 1 (exclusive)")
    return value


def main(args):
    plan, csv_path, chosen = split_master(args.master, args.dest, args.mini_test, args.category,
                                          args.train_ratio, args.seed, args.split_csv,
                                          args.overwrite)
    train = sum(len(p["train"]) for p in plan.values())
    test = sum(len(p["test"]) for p in plan.values())
    how = f"as {args.split_csv} says" if args.split_csv else f"seed {args.seed}"
    print(f"Split {train + test} pairs ({how}): {train} train, {test} test -> {args.dest}")
    print(f"Split written to {csv_path}; {len(chosen)} test originals copied to {args.mini_test}")
    print(f"The master {args.master} was only read.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", required=True,
                        help="master dataset with Original/<Category> and Segmented/<Category>")
    parser.add_argument("--category", default="Early",
                        help='a category folder name (Benign, Early, Pre, Pro) or "all"')
    parser.add_argument("--train-ratio", type=ratio, default=0.8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--split-csv", help="reproduce this split (columns split,filename)")
    parser.add_argument("--dest", default="ALL")
    parser.add_argument("--mini-test", default="mini_test",
                        help="folder for 10 test originals, for the infer script")
    parser.add_argument("--overwrite", action="store_true",
                        help="move non-empty destinations aside (renamed, never deleted)")
    run(main, parser.parse_args())
