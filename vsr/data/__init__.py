"""Training data: lazy frame-folder dataset and its deterministic sampler."""

from vsr.data.datasets import FrameFolderDataset, IterationBatchSampler, list_images

__all__ = ["FrameFolderDataset", "IterationBatchSampler", "list_images"]
