"""Evaluation: real-bitstream measurements of models on image folders."""
