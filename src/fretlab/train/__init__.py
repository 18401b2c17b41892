"""Training: the gradient loop, DDP, and the scikit-learn baselines."""
