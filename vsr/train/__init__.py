"""Training loop (single process or DistributedDataParallel)."""

from vsr.train.loop import TrainResult, fit, lr_at

__all__ = ["TrainResult", "fit", "lr_at"]
