"""TensorFlow's CUDA start-up lines are hidden on machines without a GPU; real warnings are not."""
import os

import pytest

from allseg.core.quiet_start import gpu_driver_present, shown, start_tensorflow_quietly
from conftest import run_script, tiny_config_text

CUDA_ERROR = ("E0000 00:00:1795830939.236177    3944 cuda_platform.cc:52] failed call to cuInit: "
              "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
NO_DRIVER = ("I0000 00:00:1795830935.228083    3944 cudart_stub.cc:31] Could not find cuda drivers "
             "on your machine, GPU will not be used.")
REAL_WARNING = "W0000 00:00:1795830940.1    3944 op_kernel.cc:1857] OP_REQUIRES failed: out of memory"
REAL_ERROR = "E0000 00:00:1795830940.2    3944 file_system.cc:12] could not open model.keras"
INFO = "I0000 00:00:1795830935.227772    3944 port.cc:153] oneDNN custom operations are on."


def test_cuda_start_up_lines_are_hidden_and_real_warnings_kept():
    assert not shown(CUDA_ERROR) and not shown(NO_DRIVER)
    assert shown(REAL_WARNING) and shown(REAL_ERROR)
    assert not shown(INFO) and shown(INFO, hide_info=False)
    assert shown("Traceback (most recent call last):") and shown("UserWarning: something")


def test_what_tensorflow_writes_at_start_is_filtered_at_the_file_descriptor(capfd):
    def start():  # stands in for TensorFlow's C++ start-up, which writes to fd 2 directly
        for line in (NO_DRIVER, CUDA_ERROR, REAL_WARNING, "a Python warning"):
            os.write(2, (line + "\n").encode())

    start_tensorflow_quietly(start)
    err = capfd.readouterr().err
    assert "cuInit" not in err and "cuda drivers" not in err
    assert REAL_WARNING in err and "a Python warning" in err


@pytest.mark.skipif(gpu_driver_present(), reason="a GPU driver is present: nothing is hidden there")
def test_scripts_start_without_cuda_error_lines_on_a_cpu_only_machine(tmp_path):
    config = tmp_path / "tiny.config"
    config.write_text(tiny_config_text(tmp_path))
    proc = run_script("TensorflowUNet.py", config)
    assert "Total params" in proc.stdout
    for word in ("cuInit", "CUDA error", "cuda drivers", "E0000"):
        assert word not in proc.stderr, proc.stderr
