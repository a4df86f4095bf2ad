"""Library code behind the TensorflowUNet ALL scripts: one module per job."""
import os

# TensorFlow's C++ start-up chatter hides the lines users need; keep warnings and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
