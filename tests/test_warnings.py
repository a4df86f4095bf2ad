"""A training run prints no warning the project could avoid.

A warning on every run teaches users to skip the lines around it, where the messages they need
are. Keras attributes its warnings to its own files (the filename is Keras's, the cause is the
arguments we passed), so every UserWarning raised while the project's train() runs counts,
wherever Keras says it came from.
"""
import warnings

from conftest import run_script, tiny_config_text


def test_a_short_training_raises_no_user_warning(tmp_path, synthetic_master):
    from allseg.core.config import load_config
    from allseg.train.training import train

    run_script("split_master.py", "--master", synthetic_master, "--dest", tmp_path / "ALL",
               "--mini-test", tmp_path / "mini_test")
    config = tmp_path / "tiny.config"
    config.write_text(tiny_config_text(tmp_path, epochs="1"), encoding="utf-8")
    cfg = load_config(config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a warning seen once earlier in the session still counts
        result = train(cfg)
    assert result["epochs_run"] == 1
    user = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
            if issubclass(w.category, UserWarning)]
    assert not user, "training raised warnings:\n" + "\n".join(user)
