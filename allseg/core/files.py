"""Every file the project writes goes through here: whole or not at all, and never over a user's.

A file is written to a hidden temporary name beside its target, checked to be complete, flushed
and fsync'ed, then renamed over the target; on any failure the temporary file is removed, so no
output name ever holds a partial file. OSErrors a user can act on (a full disk, no permission, a
read-only disk, a path through a file) become one-line UserErrors that name the path.
"""
import errno
import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from allseg.core.errors import UserError

# errno -> (the cause in words, what to do)
_CAUSES = {
    errno.ENOSPC: ("the disk is full", "free space on that disk or choose a folder on another one"),
    errno.EDQUOT: ("the disk quota is used up", "free space or choose a folder on another disk"),
    errno.EACCES: ("permission denied", "choose a folder you may write to, or fix its permissions"),
    errno.EPERM: ("operation not permitted", "choose a folder you may write to"),
    errno.EROFS: ("the disk is read-only", "choose a folder on a writable disk"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder",
                    "choose a path whose parent folders are folders"),
    errno.EEXIST: ("a file of that name is in the way", "move that file or choose another path"),
}


class WriteError(UserError):
    """A file or folder the project could not write, with the reason in words."""


def explain(exc: OSError, path=None, what="write", needed=None) -> WriteError | None:
    """A WriteError for an OSError a user can act on, else None (a bug should show its traceback).
    needed: the bytes the write wanted (or a function that estimates them), for a full disk."""
    cause = _CAUSES.get(exc.errno)
    if cause is None:
        return None
    path = path or exc.filename
    words, fix = cause
    if path is None:  # an error raised without its path: say what is known
        return WriteError(f"cannot {what} a file: {words}; {fix}")
    path = Path(path)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # an estimate (a function) leaves out the file's own overhead: a floor, not a figure
        floor = "at least " if callable(needed) else ""
        needed = needed() if callable(needed) else needed
        sizes = [f"{floor}{_size(needed)} needed"] if needed else []
        free = free_bytes(path)
        sizes += [] if free is None else [f"{_size(free)} free"]
        words += f" ({', '.join(sizes)})" if sizes else ""
    return WriteError(f"cannot {what} {path}: {words}; {fix}")


def translated(exc: OSError, path=None, what="write", needed=None):
    """The WriteError for exc, or exc itself when it is not one a user can act on."""
    return explain(exc, path, what, needed) or exc


def free_bytes(path) -> int | None:
    """Free bytes on the disk holding path (its nearest existing parent), or None if unknown."""
    for folder in [Path(path), *Path(path).parents]:
        try:
            if folder.exists():
                return shutil.disk_usage(folder).free
        except OSError:
            return None
    return None


def _size(n):
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def make_folder(folder, setting=""):
    """mkdir -p, with a one-line error naming the setting ('[train] model_dir = ', '--output ')
    and the path."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        error = explain(exc, folder, "create the folder")
        if error is None:
            raise
        raise WriteError(f"{setting}{folder}: {error}" if setting else str(error)) from None
    if not folder.is_dir():
        raise WriteError(f"{setting}{folder} exists and is not a folder: move that file or "
                         "choose another path")
    return folder


def _temporary_name(path: Path) -> Path:
    # the target's suffix is kept: Keras and matplotlib choose the format from it
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder):
    """Makes the rename itself durable; not every file system lets a folder be opened."""
    try:
        _fsync(folder)
    except OSError:
        pass


@contextmanager
def replace_atomically(path, needed=None):
    """Yields a temporary name beside path for a writer that takes a path (Keras, matplotlib); once
    the block has written it, it is fsync'ed and renamed to path. On any failure the temporary
    file is removed and the target is left as it was. needed: the size, when known, for errors."""
    path = Path(path)
    tmp = _temporary_name(path)
    try:
        yield tmp
        if not tmp.is_file():
            raise WriteError(f"cannot write {path}: the writer left no file")
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise translated(exc, path, needed=needed) from None
    except BaseException:
        _remove(tmp)
        raise
    _fsync_folder(path.parent)


def _remove(tmp):
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    except IsADirectoryError:  # Keras writes a folder for some formats
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path, data: bytes):
    """Writes data to path whole: every byte checked written and on disk before the rename."""
    view = memoryview(data).cast("B")
    with replace_atomically(path, needed=len(view)) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            done = 0
            while done < len(view):  # os.write may write less than asked, e.g. near a full disk
                done += os.write(fd, view[done:])
        finally:
            os.close(fd)


def copy_file(source, target):
    """shutil.copy2, whole or not at all: the copy takes its name only once it is on disk."""
    with replace_atomically(target, needed=Path(source).stat().st_size) as tmp:
        shutil.copy2(source, tmp)


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, data):
    write_text(path, json.dumps(data, indent=2) + "\n")


def sha256_file(path, chunk=1 << 20):
    """The file's SHA-256 in hex, read a chunk at a time: a model file is tens of MB."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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
