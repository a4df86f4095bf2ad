"""Fitting the model: the training loop, resume points, distribution, logs and plots."""
