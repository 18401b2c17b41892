"""fretlab: a reproducible audio machine-learning lab built on DVC, PyTorch and librosa."""

__version__ = "0.1.0"
