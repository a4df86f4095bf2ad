"""A quiet TensorFlow start on machines without a GPU. Import this module first in a script.

TensorFlow 2.21's Linux wheel looks for CUDA whatever the machine, and on a CPU-only machine prints
"Could not find cuda drivers" and an ``E0000 ... failed call to cuInit: ... CUDA error`` line while
it starts. These come from C++ before its log settings apply (TF_CPP_MIN_LOG_LEVEL does not hide
them), and to a new user an error line reads as a failure. So, where no NVIDIA driver is present,
TensorFlow is imported and its devices listed with file descriptor 2 sent to a temporary file; the
lines are then printed again, less the CUDA start-up lines and the info lines that
TF_CPP_MIN_LOG_LEVEL asks to hide. Real warnings and errors still print. On a machine with a GPU
driver, nothing is hidden.
"""
import os
import re
import sys
import tempfile
from pathlib import Path

# Device nodes and driver files of an NVIDIA driver (Linux, and WSL's GPU bridge).
GPU_DRIVER_PATHS = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/dxg")

# absl's log line prefix: severity letter, date, time, thread, source file and line.
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([\w.]+):\d+\] (.*)$")
_CUDA_WORDS = re.compile(r"cuda|cuinit|cudnn|cublas|cufft|nvidia", re.IGNORECASE)
_STARTUP_NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    # The second line of cpu_feature_guard's info message, which absl does not prefix.
    "To enable the following instructions:",
)


def gpu_driver_present(paths=GPU_DRIVER_PATHS):
    return any(Path(p).exists() for p in paths)


def shown(line, hide_info=True):
    """False for TensorFlow's CUDA start-up lines (and its info lines, with hide_info)."""
    if line.startswith(_STARTUP_NOISE):
        return False
    match = _ABSL_LINE.match(line)
    if not match:
        return True  # not one of TensorFlow's log lines: Python warnings, tracebacks, prints
    severity, source, message = match.groups()
    if _CUDA_WORDS.search(source) or _CUDA_WORDS.search(message):
        return False
    return not (hide_info and severity == "I")


def start_tensorflow():
    # imported here: TensorFlow prints its CUDA lines as it loads, so only once fd 2 is captured
    import tensorflow as tf
    tf.config.list_physical_devices()  # the cuInit call happens here, not at import


def start_tensorflow_quietly(start=start_tensorflow):
    """Runs start() (by default: imports TensorFlow and lists its devices) with what it writes to
    file descriptor 2 printed afterwards, less the CUDA start-up lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            start()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            hide_info = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("", "0")
            kept = [line for line in text.splitlines() if shown(line, hide_info)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" and not gpu_driver_present():
    start_tensorflow_quietly()
