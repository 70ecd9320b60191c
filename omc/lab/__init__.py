"""The Lab: agents that turn a goal into a trained, evaluated model."""
