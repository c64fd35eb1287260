"""Orchestration: one clip, a batch, training, evaluation. Imports vsr, never click."""
