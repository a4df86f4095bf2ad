"""TensorflowUNet: the config-driven, compiled U-Net the scripts share."""
import keras

from allseg.core.accel import build_with_policy, resolve
from allseg.core.config import load_config
from allseg.core.errors import UserError
from allseg.core.run_lock import note_if_training
from allseg.model.architecture import build_unet
from allseg.model.losses_metrics import make_loss, make_metrics
from allseg.model.shipped import trained_model_path


class TensorflowUNet:
    """Reads a config file and builds and compiles the U-Net it describes (``self.model``)."""

    def __init__(self, config="./train_eval_infer.config", learning_rate=None):
        # A path is read and checked here; an already loaded config is used as it is.
        self.config = config if hasattr(config, "model") else load_config(config)
        m, t = self.config.model, self.config.train
        self.mixed_precision = resolve(t.mixed_precision)
        self.model = build_with_policy(
            lambda: build_unet(m.image_height, m.image_width, m.image_channels, m.num_classes,
                               m.base_filters, m.num_layers, m.dropout_rate, m.activation,
                               m.batch_norm, m.stain_normalize),
            self.mixed_precision)
        compile_for_training(self.model, self.config, learning_rate)

    def summary(self):
        self.model.summary(line_length=110)  # wide enough for shapes on one line, piped or not


def compile_for_training(model, cfg, learning_rate=None):
    """Compiles model as [train] says: Adam at learning_rate (a schedule the trainer built, or
    [model] learning_rate), the config's loss and the project's metrics. Under mixed precision
    Keras wraps Adam in a loss-scale optimizer by itself."""
    t = cfg.train
    model.compile(optimizer=keras.optimizers.Adam(learning_rate or cfg.model.learning_rate),
                  loss=make_loss(t.loss), metrics=make_metrics(),
                  jit_compile=resolve(t.jit_compile), steps_per_execution=t.steps_per_execution)
    return model


def load_trained_model(cfg):
    """The best model the trainer saved for this config, checked against the config's sizes."""
    path = trained_model_path(cfg)
    if not path.is_file():
        raise UserError(f"no trained model at {path}: run TensorflowUNetALLTrainer.py "
                        f"{cfg.path} first (or fix [train] model_dir)")
    note_if_training(path.parent)
    try:
        model = keras.models.load_model(path)
    except Exception as exc:  # Keras raises many types for a damaged or foreign file
        raise UserError(f"{path}: cannot be loaded as a Keras model ({type(exc).__name__}: "
                        f"{_first_sentence(exc)})") from None
    model.jit_compile = resolve(cfg.train.jit_compile)  # a speed switch, free to differ from training
    want = (cfg.model.image_height, cfg.model.image_width, cfg.model.image_channels)
    have = tuple(model.input_shape[1:])
    if have != want:
        raise UserError(f"{path} was trained for inputs {have[1]}x{have[0]}x{have[2]} but {cfg.path} "
                        f"asks for {want[1]}x{want[0]}x{want[2]}: use the config it was trained "
                        "with, or train again")
    return model


def _first_sentence(exc):
    """Keras's load errors run to a paragraph; the first sentence says what is wrong."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text.split(". ")[0]
