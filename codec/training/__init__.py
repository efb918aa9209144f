"""Training: one step function per method, the data pipeline, and the checkpointing loop."""
