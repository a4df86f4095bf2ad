"""From images to masks: prediction (tiled or whole), the inference engines, exports, and the
folder-to-masks-and-cells job of the infer script."""
