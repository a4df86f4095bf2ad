"""strategy = "multi_worker": two worker processes on loopback ports train one model together on
the CPU; both end with the same weights, and only the chief writes outputs."""
import json
import socket
import subprocess
import sys

from conftest import ROOT, run_script, script_process_options, tiny_config_text


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_end_with_identical_weights_and_only_the_chief_writes(tmp_path, synthetic_master):
    run_script("split_master.py", "--master", synthetic_master, "--dest", tmp_path / "ALL",
               "--mini-test", tmp_path / "mini_test")
    config = tmp_path / "cluster.config"
    text = tiny_config_text(tmp_path, epochs="2", batch_size="2")
    config.write_text(text.replace('loss           = "bce_dice"',
                                   'loss           = "bce_dice"\nstrategy       = "multi_worker"'))
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    procs = []
    for index in range(2):
        options = script_process_options()
        options["env"].update({"CUDA_VISIBLE_DEVICES": "", "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})})
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "TensorflowUNetALLTrainer.py"),
                                       str(config)], cwd=ROOT, text=True, encoding="utf-8",
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **options))
    outs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        outs.append(out)
    assert "2 replicas" in outs[0] and "this process writes" in outs[0]
    assert "this process does not write" in outs[1]
    prints = [[line for line in out.splitlines() if line.startswith("Final weights fingerprint")]
              for out in outs]
    assert len(prints[0]) == 1 and prints[0] == prints[1]

    # one set of outputs, from the chief: no second log, model or temp file beside them
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["best_model.keras"]
    written = sorted(p.name for p in (tmp_path / "eval").iterdir())
    assert written == ["tensorboard", "train_log.csv", "train_losses.png", "train_metrics.png"]
    assert "Trained 2 epochs" in outs[0] and "Trained 2 epochs" in outs[1]


def test_multi_worker_without_a_cluster_is_explained(tmp_path):
    config = tmp_path / "c.config"
    config.write_text(tiny_config_text(tmp_path).replace(
        'loss           = "bce_dice"', 'loss           = "bce_dice"\nstrategy       = "multi_worker"'))
    proc = run_script("TensorflowUNetALLTrainer.py", config, check=False)  # conftest clears TF_CONFIG
    assert proc.returncode == 2 and "TF_CONFIG" in proc.stderr and "Traceback" not in proc.stderr
