"""The PSNR-gain patch sampler (``vsr train --sampler gain``).

After the patch sampler of A. Chaudhary and D. A. Tanwar's report on SRResNet
for single-image SR: hard patches (those the model improves least over
bicubic) are drawn more often.

- The pool is a fixed set of ``N = files * pool_per_file`` items. Item ``i``
  is file ``i // pool_per_file`` with a patch seed fixed by (run seed, i), so
  drawing it again yields the same crops, flips and degradation. One item is
  one dataset key: ``patches_per_image`` crops from one decode, scored as one.
- Every item starts with probability ``1 / N``.
- A round is ``round_iterations`` iterations; it draws
  ``K = round_iterations * items_per_batch`` distinct items in proportion to
  their probabilities, and the model trains on them.
- The loop reports each item's PSNR gain over bicubic (measured on the
  training forward pass, so it costs nothing extra). A histogram of ``bins``
  equal bins is built over the round's gains, ``f(j)`` the fraction of the
  round's items in bin ``j``. Item ``i`` in bin ``b(i)`` gets
  ``val(i) = sum_{j >= b(i)} width(j) * f(j)`` and its probability becomes
  ``val(i) / sum(val) * P_sample``, ``P_sample`` the summed probability of the
  round's items before the update: the mass of the sample is kept, so the
  probabilities stay a distribution, and low-gain items gain mass.

The loader prefetches a few batches ahead of the training step, so round
``r`` is drawn from the probabilities after round ``r - 2`` (one round of lag):
the draw then never races the update and stays a pure function of the run,
which keeps ``--resume`` exact. The state (two probability vectors, one float
per item, and the gains of the round in progress) goes in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

__all__ = ["GainSampler", "gain_update"]


def gain_update(probs: NDArray[np.float64], items: NDArray[np.int64], gains: NDArray[np.float64],
                bins: int) -> NDArray[np.float64]:
    """One update of the report's rule; returns new probabilities (``probs`` is not changed).

    ``items``: distinct pool indices of the round; ``gains``: their PSNR gains
    over bicubic in dB (same length, finite).
    """
    new = probs.copy()
    if len(items) == 0:
        return new
    lo, hi = float(gains.min()), float(gains.max())
    if hi - lo < 1e-12:  # every gain equal: the histogram is one bin, val is the same for all
        return new
    width = (hi - lo) / bins
    which = np.minimum(((gains - lo) / width).astype(np.int64), bins - 1)
    freq = np.bincount(which, minlength=bins) / len(items)
    # tail[j] = sum over bins j' >= j of width * f(j')
    tail = np.cumsum((width * freq)[::-1])[::-1]
    val = tail[which]
    mass = float(probs[items].sum())
    new[items] = val / val.sum() * mass
    return new


class GainSampler:
    """Endless batches of ``(file_index, seed)`` keys drawn by PSNR gain (see the module docstring).

    Use as the ``batch_sampler`` of a DataLoader; the training loop calls
    :meth:`report` with each batch's per-item gains, in order.
    """

    def __init__(self, num_files: int, items_per_batch: int, *, seed: int, round_iterations: int = 25,
                 pool_per_file: int = 16, bins: int = 10, start_iteration: int = 0) -> None:
        if num_files < 1 or items_per_batch < 1 or round_iterations < 1 or pool_per_file < 1 or bins < 1:
            raise ValueError("gain sampler: files, batch, round, pool and bins must all be >= 1")
        self.size = num_files * pool_per_file
        self.per_round = round_iterations * items_per_batch
        if self.per_round > self.size:
            raise ValueError(f"gain sampler: a round of {self.per_round} items is more than the pool of {self.size}")
        self.num_files, self.items_per_batch = num_files, items_per_batch
        self.seed, self.round_iterations = seed, round_iterations
        self.pool_per_file, self.bins = pool_per_file, bins
        self.start_iteration = start_iteration
        uniform = np.full(self.size, 1.0 / self.size)
        # probs[k]: after k updates. Only the last two are kept (round r draws from r - 1 updates back).
        self._updates = 0
        self._probs = [uniform, uniform.copy()]  # [after updates - 1, after updates]
        self._pending = np.full(self.per_round, np.nan)
        self._round_cache: dict[int, NDArray[np.int64]] = {}
        self._seeds = np.random.default_rng([seed, 0x5A]).integers(0, 2**62, size=self.size)

    # -- the draw ---------------------------------------------------------------------------------
    def _draw_probs(self, r: int) -> NDArray[np.float64]:
        """Round ``r`` draws from the probabilities after ``max(0, r - 1)`` updates."""
        need = max(0, r - 1)
        if need == self._updates:
            return self._probs[1]
        if need == self._updates - 1:
            return self._probs[0]
        raise RuntimeError(f"gain sampler: round {r} asked for after {self._updates} updates "
                           "(the loader prefetches further ahead than a round; use a longer --sampler-round)")

    def round_items(self, r: int) -> NDArray[np.int64]:
        """The ``K`` distinct pool indices of round ``r``, in training order."""
        if r not in self._round_cache:
            p = self._draw_probs(r)
            rng = np.random.default_rng([self.seed, r, 0x6A])
            self._round_cache[r] = rng.choice(self.size, size=self.per_round, replace=False, p=p / p.sum())
            for old in [k for k in self._round_cache if k < r - 2]:
                del self._round_cache[old]
        return self._round_cache[r]

    def keys(self, it: int) -> list[tuple[int, int]]:
        """The dataset keys of iteration ``it`` (0-based)."""
        r, pos = divmod(it, self.round_iterations)
        chosen = self.round_items(r)[pos * self.items_per_batch : (pos + 1) * self.items_per_batch]
        return [(int(i) // self.pool_per_file, int(self._seeds[i])) for i in chosen]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        it = self.start_iteration
        while True:
            yield self.keys(it)
            it += 1

    def __len__(self) -> int:
        return 2**31

    # -- the feedback -----------------------------------------------------------------------------
    def report(self, it: int, gains: NDArray[np.float64]) -> None:
        """Record iteration ``it``'s per-item gains (dB); the last iteration of a round applies the update."""
        r, pos = divmod(it, self.round_iterations)
        if r != self._updates:
            raise RuntimeError(f"gain sampler: gains for round {r} while waiting for round {self._updates}")
        g = np.asarray(gains, np.float64).reshape(-1)
        if len(g) != self.items_per_batch:
            raise ValueError(f"gain sampler: {len(g)} gains for a batch of {self.items_per_batch} items")
        self._pending[pos * self.items_per_batch : (pos + 1) * self.items_per_batch] = g
        if pos == self.round_iterations - 1:
            finite = np.isfinite(self._pending)
            items = self.round_items(r)
            updated = gain_update(self._probs[1], items[finite], self._pending[finite], self.bins)
            self._probs = [self._probs[1], updated]
            self._updates += 1
            self._pending[:] = np.nan

    @property
    def probs(self) -> NDArray[np.float64]:
        """The current probabilities over the pool (float64, sums to 1)."""
        return self._probs[1]

    # -- resume -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"updates": self._updates, "probs_prev": self._probs[0].copy(), "probs": self._probs[1].copy(),
                "pending": self._pending.copy(), "size": self.size, "per_round": self.per_round}

    def load_state_dict(self, state: dict) -> None:
        if int(state["size"]) != self.size or int(state["per_round"]) != self.per_round:
            raise ValueError("gain sampler state is for another pool or round size")
        self._updates = int(state["updates"])
        self._probs = [np.asarray(state["probs_prev"], np.float64), np.asarray(state["probs"], np.float64)]
        self._pending = np.asarray(state["pending"], np.float64).copy()
        self._round_cache.clear()
