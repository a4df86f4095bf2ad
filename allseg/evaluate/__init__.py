"""Scoring: pixel and cell scores against the truth, the evaluator's summary and pictures,
paired comparisons and export checks."""
