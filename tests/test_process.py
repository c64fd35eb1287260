from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Upscale one 640x360 frame a few times with a 2-block EDSR (44 MB feature
# maps, above glibc's largest mmap threshold) and report the page faults of
# the quietest of five warm frames and the median frame's growth of the resident set.
PROBE = """
import resource, sys
import numpy as np
import torch
from vsr.engine import Engine
from vsr.models import create_model
from vsr.process import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "on" else False
torch.set_num_threads(1)
engine = Engine(create_model("edsr", scale=2, num_blocks=2, num_features=48, tail="shuffle"),
                device="cpu", dtype="fp32", batch_size=1)
y = np.random.default_rng(0).integers(16, 236, (1, 360, 640), dtype=np.uint8)
def resident():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()
for _ in range(3):
    engine.upscale_y(y)
per_frame, growth = [], []
for _ in range(5):
    rss, faults = resident(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    engine.upscale_y(y)
    per_frame.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
    growth.append(resident() - rss)
# The quietest of five frames for faults, the median frame for growth: a single frame may take
# one allocation's worth when oneDNN (whose kernels differ by CPU) or the load on the machine
# shifts a buffer; a leak or a fresh mapping per frame shows in every frame.
print(int(applied), min(per_frame), sorted(growth)[len(growth) // 2])
"""


def _last_frame(mode: str) -> tuple[bool, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, cwd=ROOT)
    applied, faults, growth = out.stdout.split()
    return applied == "1", int(faults), int(growth)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_retained_memory_takes_no_page_faults_per_frame_and_does_not_grow():
    applied, faults_on, growth_on = _last_frame("on")
    _, faults_off, _ = _last_frame("off")
    assert applied
    feature_map_pages = 640 * 360 * 48 * 4 // 4096
    assert faults_off > feature_map_pages  # glibc's default: fresh mappings faulted in every frame
    assert faults_on < feature_map_pages // 10  # retained: the same blocks reused warm
    assert growth_on < 8 << 20  # and reused, not leaked: the heap does not grow frame to frame
