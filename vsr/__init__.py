"""vsr: video super-resolution on the luma plane.

Only the version lives here, so that ``import vsr.io`` stays free of torch.
"""

__version__ = "0.1.0"
