"""File-system helpers that never lose a user's file."""
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path


def keep_previous(path) -> Path | None:
    """Rename an existing file to ``<stem>.<its mtime>[-n]<suffix>`` so a new run cannot overwrite
    it; returns the new name, or None when there was nothing to keep."""
    path = Path(path)
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))
    target = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.stem}.{stamp}-{n}{path.suffix}")
    os.replace(path, target)
    return target


@contextmanager
def replace_atomically(path):
    """Yields a temporary name beside path; renamed to path once the block has written it, so a
    crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    yield tmp
    os.replace(tmp, path)


def write_text(path, text):
    """Write text to a temporary name and rename it, so a crash never leaves half a file."""
    with replace_atomically(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, data):
    write_text(path, json.dumps(data, indent=2) + "\n")


def set_aside(folder):
    """Rename an existing folder to <name>.previous-<time>, so overwriting loses nothing."""
    folder = Path(folder)
    target = folder.with_name(f"{folder.name}.previous-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{target.name}-{n}")
    folder.rename(target)
    return target
