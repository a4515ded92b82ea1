"""scdrbench: a reproducible benchmark of dimensionality reduction for single-cell RNA-seq."""

__version__ = "0.1.0"
