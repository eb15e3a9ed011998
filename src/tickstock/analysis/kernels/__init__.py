"""Indicator kernels: the batch function and the incremental state behind each spec kind."""
