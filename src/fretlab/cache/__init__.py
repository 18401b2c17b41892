"""The feature cache: featurize writes it, the reader loads it."""
