"""The U-Net graph (Ronneberger et al. 2015) as the seed project's summary shows it."""
import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="allseg")
class HueSaturationValue(layers.Layer):
    """Appends hue (as its cosine and sine, so red wraps round smoothly), saturation and value to
    RGB in [0, 1]. The dataset's truth is a colour threshold in HSV space, and a ratio such as
    saturation is hard for a few ReLU convolutions to build from RGB."""

    def call(self, rgb):
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        value = ops.max(rgb, axis=-1)
        saturation = (value - ops.min(rgb, axis=-1)) / (value + 1e-3)
        # Opponent-colour axes: their angle is the hue, without HSV's six-way case split.
        alpha = r - 0.5 * (g + b)
        beta = 0.8660254 * (g - b)
        radius = ops.sqrt(alpha * alpha + beta * beta) + 1e-3
        extra = ops.stack([alpha / radius, beta / radius, saturation, value], axis=-1)
        return ops.concatenate([rgb, extra], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 4)


def build_unet(height, width, channels=3, num_classes=1, base_filters=16, num_layers=6,
               dropout_rate=0.08, activation="elu", batch_norm=False, hsv_input=False):
    """Encoder of ``num_layers`` levels, a bottleneck, a mirrored decoder and a sigmoid 1x1 head.

    Inputs are raw 0-255 pixels: the Rescaling layer scales them, so a saved ``.keras`` file
    carries its own preprocessing. hsv_input=True gives the first convolution hue, saturation and
    value beside RGB.
    """
    def conv(x, filters):
        if not batch_norm:
            return layers.Conv2D(filters, 3, padding="same", activation=activation,
                                 kernel_initializer="he_normal")(x)
        # Batch norm replaces the bias; it steadies training at higher learning rates.
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization()(x)
        return layers.Activation(activation)(x)

    def conv_block(x, filters):
        x = conv(x, filters)
        x = layers.Dropout(dropout_rate)(x)
        return conv(x, filters)

    inputs = keras.Input((height, width, channels), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    if hsv_input:
        x = HueSaturationValue(dtype="float32", name="hsv")(x)  # float32: ratios of small numbers

    skips = []
    for level in range(num_layers):
        x = conv_block(x, base_filters * 2 ** level)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)

    x = conv_block(x, base_filters * 2 ** num_layers)

    for level in reversed(range(num_layers)):
        filters = base_filters * 2 ** level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
        x = layers.Concatenate()([x, skips[level]])
        x = conv_block(x, filters)

    # float32 output keeps loss and metrics exact under mixed precision.
    outputs = layers.Conv2D(num_classes, 1, activation="sigmoid", dtype="float32", name="mask")(x)
    return keras.Model(inputs, outputs, name="TensorflowUNet")
