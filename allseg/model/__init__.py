"""The U-Net: its Keras graph, the config-driven TensorflowUNet, and its losses and metrics."""
