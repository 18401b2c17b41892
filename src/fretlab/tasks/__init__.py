"""Targets, losses, metrics, evaluation, plots and cross-validation summaries."""
