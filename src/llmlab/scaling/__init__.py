"""Scaling laws: sweeps of model size x compute, IsoFLOP and parametric L(N, D) fits, and predictions."""
