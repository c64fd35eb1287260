"""The PSNR-gain patch sampler: a distribution throughout, hard items gain mass, exact resume."""

from __future__ import annotations

import numpy as np
import pytest

from vsr.data.gain import GainSampler, gain_update


def test_update_keeps_a_distribution_and_moves_mass_to_hard_items():
    rng = np.random.default_rng(0)
    probs = rng.random(200)
    probs /= probs.sum()
    items = rng.choice(200, size=40, replace=False)
    gains = rng.normal(1.0, 0.8, size=40)
    new = gain_update(probs, items, gains, bins=10)
    assert new.min() > 0 and new.sum() == pytest.approx(1.0, abs=1e-12)
    untouched = np.setdiff1d(np.arange(200), items)
    assert np.array_equal(new[untouched], probs[untouched])  # only the sample is re-weighted
    assert new[items].sum() == pytest.approx(probs[items].sum(), rel=1e-12)  # ... and keeps its mass
    hard, easy = items[np.argmin(gains)], items[np.argmax(gains)]
    assert new[hard] > new[easy]
    # val is monotone: a lower gain never gets less probability
    order = np.argsort(gains)
    assert np.all(np.diff(new[items][order]) <= 1e-15)


def test_update_by_hand_on_two_bins():
    probs = np.full(4, 0.25)
    # gains 0, 0, 0, 1 over two bins of width 0.5: f = (3/4, 1/4); val(low) = 0.5 * (3/4 + 1/4), val(high) = 0.5/4
    new = gain_update(probs, np.arange(4), np.array([0.0, 0.0, 0.0, 1.0]), bins=2)
    assert np.allclose(new, np.array([0.5, 0.5, 0.5, 0.125]) / 1.625)


def test_equal_gains_change_nothing():
    probs = np.full(10, 0.1)
    assert np.array_equal(gain_update(probs, np.arange(5), np.full(5, 2.0), bins=4), probs)


def _run(sampler: GainSampler, start: int, stop: int, gain_of) -> list:
    keys = []
    for it in range(start, stop):
        batch = sampler.keys(it)
        keys.append(batch)
        sampler.report(it, np.array([gain_of(k) for k in batch]))
    return keys


def test_rounds_draw_distinct_items_and_resume_exactly():
    def gain_of(key):  # file 0 is "hard"
        return 0.1 if key[0] == 0 else 2.0 + (key[1] % 7) / 10

    a = GainSampler(5, 3, seed=4, round_iterations=4, pool_per_file=8)
    keys_a = _run(a, 0, 30, gain_of)
    for r in range(7):  # each round's items are distinct
        flat = [k for batch in keys_a[4 * r : 4 * r + 4] for k in batch]
        assert len(set(flat)) == len(flat)
    assert a.probs.sum() == pytest.approx(1.0)
    assert a.probs[:8].sum() > 1.25 / 5  # file 0's items have gained mass (from a fifth)

    b = GainSampler(5, 3, seed=4, round_iterations=4, pool_per_file=8)
    _run(b, 0, 13, gain_of)  # stop mid-round
    state = b.state_dict()
    c = GainSampler(5, 3, seed=4, round_iterations=4, pool_per_file=8, start_iteration=13)
    c.load_state_dict(state)
    assert _run(c, 13, 30, gain_of) == keys_a[13:]
    assert np.array_equal(c.probs, a.probs)


def test_a_draw_too_far_ahead_is_refused():
    s = GainSampler(4, 2, seed=0, round_iterations=2, pool_per_file=4)
    s.keys(0), s.keys(2)  # rounds 0 and 1 come from the start
    with pytest.raises(RuntimeError, match="prefetches"):
        s.keys(4)  # round 2 needs round 0's update


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="more than the pool"):
        GainSampler(2, 4, seed=0, round_iterations=10, pool_per_file=2)
    with pytest.raises(ValueError, match=">= 1"):
        GainSampler(0, 1, seed=0)
