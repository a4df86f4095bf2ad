"""The U-Net graph (Ronneberger et al. 2015) as the seed project's summary shows it."""
import keras
from keras import layers


def build_unet(height, width, channels=3, num_classes=1, base_filters=16, num_layers=6,
               dropout_rate=0.08, activation="elu", batch_norm=False,
               stain_normalize=False):
    """Encoder of ``num_layers`` levels, a bottleneck, a mirrored decoder and a sigmoid 1x1 head.

    Inputs are raw 0-255 pixels: the Rescaling layer scales them, so a saved ``.keras`` file
    carries its own preprocessing and reloads without custom code.
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
    if stain_normalize:
        # One group per channel, no learned scale: a per-image, per-channel standardisation
        # (Reinhard's idea, in RGB) that a plain Keras layer does, so .keras files reload as is.
        x = layers.GroupNormalization(groups=channels, center=False, scale=False,
                                      name="stain_normalize")(x)

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
