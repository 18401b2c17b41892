"""Data sources, metadata validation, dataset adapters, splits and cross-validation folds."""
