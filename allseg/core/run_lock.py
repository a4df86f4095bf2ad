"""One training run per model_dir: a lock file the trainer holds for the whole run.

The lock is an ``fcntl.flock`` on ``<model_dir>/run.lock``, which names its holder (process id,
host, start time, config). The kernel drops the lock when the process ends however it ends, so a
lock file with a holder written in it but no lock held is a killed run's: it is taken over with a
note. The file is removed at the end of a run, while still locked; a run that locked the file
just as it was removed sees that the path no longer names the file it holds, and tries again.
Readers (the evaluator, the infer script) only look: they never block.
"""
import errno
import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from allseg.core.errors import UserError
from allseg.core.files import translated

LOCK_FILE = "run.lock"


def _describe(holder):
    return (f"process {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
            f"{holder.get('started', '?')} with {holder.get('config', '?')}")


def _read_holder(handle):
    handle.seek(0)
    try:
        return json.loads(handle.read().decode("utf-8") or "null")
    except ValueError:
        return {"pid": "?", "host": "?", "started": "?", "config": "an unreadable lock file"}


@contextmanager
def training_lock(model_dir, config_path, log=print):
    """Holds model_dir's run lock for the block; refuses at once when another run holds it."""
    path = Path(model_dir) / LOCK_FILE
    handle = _open_locked(path, model_dir)
    if handle is None:  # a file system without locks
        log(f"warning: {path.parent}'s file system cannot lock files: nothing stops a second "
            "run from writing to the same model_dir")
        yield
        return
    try:
        stale = _read_holder(handle)
        if stale:
            log(f"note: took over the run lock of a run that is no longer running "
                f"({_describe(stale)})")
        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                             "config": str(config_path)})
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(holder.encode("utf-8"))
        except OSError as exc:
            raise translated(exc, path) from None
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: see the module's docstring
        handle.close()  # closing drops the lock


def _open_locked(path, model_dir):
    """The lock file, open and locked by this process; None where locks are not supported."""
    while True:
        try:
            handle = open(path, "a+b", buffering=0)  # unbuffered: no failed write retried at close
        except OSError as exc:
            raise translated(exc, path) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(handle)
            handle.close()
            raise UserError(
                f"{model_dir} is in use by another training run ({_describe(holder)}): wait for "
                "it to end, stop it (its resume point lets it go on later), or give this run "
                "another [train] model_dir") from None
        except OSError as exc:
            handle.close()
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return None
            raise translated(exc, path) from None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # the run that held it removed it as it ended: lock the new one


def running_training(model_dir):
    """The holder (dict) of a training run writing model_dir now, or None."""
    path = Path(model_dir) / LOCK_FILE
    try:
        handle = open(path, "rb")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(handle) or {}
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


def note_if_training(model_dir, log=print):
    """Says so when a trainer is writing model_dir: its best model is whole (it is renamed into
    place) but may be replaced by a better one before the run ends."""
    holder = running_training(model_dir)
    if holder is not None:
        log(f"note: a training run is writing {model_dir} now ({_describe(holder)}); using the "
            "best model it has saved so far, which a later epoch may replace")
