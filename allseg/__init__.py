"""Library code behind the TensorflowUNet ALL scripts, one sub-package per stage, in the order
they may import each other: core, cells, data, model, train, infer, evaluate. A module imports
from its own stage or an earlier one, never a later one (tests/test_layout.py checks)."""
import os

# TensorFlow's C++ start-up chatter hides the lines users need; keep warnings and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
