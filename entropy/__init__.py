"""Entropy models (learned probabilities) and the range coder that uses their frozen integer tables."""
