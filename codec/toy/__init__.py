"""Toy vector sources (paper 004, Sec. 5), ECVQ and rate-distortion references."""
