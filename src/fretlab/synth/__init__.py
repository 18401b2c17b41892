"""Embedded synthetic datasets, one generator per module."""
