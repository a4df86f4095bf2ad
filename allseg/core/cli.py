"""What every script shares: the optional config argument, --help, and clean error exits."""
import argparse
import sys

from allseg.core.errors import UserError
from allseg.core.files import explain

DEFAULT_CONFIG = "./train_eval_infer.config"


def config_parser(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG,
                        help=f"config file (default: {DEFAULT_CONFIG})")
    return parser


def add_model_argument(parser):
    parser.add_argument("--model", metavar="pretrained|PATH",
                        help="the model to run: 'pretrained' (the one that ships in pretrained/, "
                        "with its own input size and cell settings), a .keras file, or a folder "
                        "holding best_model.keras (default: the config's [train] model_dir)")
    return parser


def run(main, *args):
    """Calls main(*args); a UserError or Ctrl-C ends the program with a message, not a traceback."""
    try:
        return main(*args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # a full disk, no permission, ...: one line; anything else is a bug
        error = explain(exc)
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("\ninterrupted: stopped by the user", file=sys.stderr)
        sys.exit(130)
