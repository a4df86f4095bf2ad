"""Images and masks on disk: reading, pairing, splitting the Kaggle layout, synthetic smears,
the truth audit, augmentation, weight maps and the tf.data pipeline."""
