"""Tests for sampo_ref.algos.dynamic_sampling: the uniformity test, the resampling loop of
docs/algorithms/dynamic_sampling.md#the-rule (keep, drop, fill, truncate, try limit) and when the filter is active.

Rollouts are scripted lists of groups; each test counts the rollout calls.
"""

import random
from dataclasses import dataclass

import pytest

from sampo_ref.algos.dynamic_sampling import dynamic_sample, filter_active, is_uniform


G = 2


@dataclass
class Grp:
    name: str
    returns: list[float]


def U(name):  # uniform: all fail
    return Grp(name, [0.0] * G)


def N(name):  # non-uniform: one wins
    return Grp(name, [10.0, 0.0])


class Script:
    """rollout() returns the next scripted batch of groups and counts its calls."""

    def __init__(self, *batches):
        self.batches, self.calls = list(batches), 0

    def __call__(self):
        self.calls += 1
        return self.batches[self.calls - 1]


def _names(groups):
    return [g.name for g in groups]


def test_is_uniform():
    assert is_uniform([0.0, 0.0, 0.0]) and is_uniform([10.0, 10.0]) and is_uniform([3.0])
    assert not is_uniform([0.0, 10.0, 0.0])
    assert not is_uniform([0.1 + 0.2, 0.3])  # exact equality, no tolerance
    with pytest.raises(ValueError):
        is_uniform([])


def test_keeps_non_uniform_truncates_and_stops_early():
    """One try is enough: uniform groups dropped, surplus cut by whole groups, no second rollout."""
    rollout = Script([U("u1"), N("a"), U("u2"), N("b"), N("c")], [N("never")])
    kept, info = dynamic_sample(rollout, target_trajectories=4, group_size=G, max_tries=3)
    assert _names(kept) == ["a", "b"]
    assert rollout.calls == 1
    assert info == dict(tries=1, groups_seen=5, uniform_seen=2, uniform_dropped=2,
                        uniform_filler=0, surplus_dropped=1, trajectories_kept=4)


def test_resamples_and_fills_last_try_in_order():
    """Short after tries 1-2 -> last try fills the deficit: non-uniform first, then uniform in order."""
    rollout = Script([U("u1"), N("a")], [U("u2"), U("u3")], [U("x"), U("y"), N("b"), U("z")])
    kept, info = dynamic_sample(rollout, target_trajectories=6, group_size=G, max_tries=3)
    assert _names(kept) == ["a", "b", "x"]  # deficit 4 -> 2 groups: b, then the first uniform x
    assert rollout.calls == 3
    assert info["uniform_filler"] == 1 and info["uniform_dropped"] == 5
    assert info["trajectories_kept"] == 6 and info["tries"] == 3 and info["groups_seen"] == 8


def test_uniform_filler_never_before_the_last_try():
    """Uniform groups on tries 1..max-1 are dropped even when the pool is short."""
    rollout = Script([U("u1"), U("u2")], [U("u3"), N("a")], [U("u4")], [N("never")])
    kept, info = dynamic_sample(rollout, target_trajectories=8, group_size=G, max_tries=3)
    assert _names(kept) == ["a", "u4"]  # u1-u3 dropped; u4 is filler on the last try
    assert rollout.calls == 3  # the limit, never more
    assert info["trajectories_kept"] == 4  # short of the target: allowed after the last try


def test_single_try_is_the_last_try():
    """max_tries = 1: the only try fills with uniform groups after the non-uniform ones."""
    rollout = Script([U("u1"), U("u2"), N("a"), U("u3")])
    kept, info = dynamic_sample(rollout, target_trajectories=6, group_size=G, max_tries=1)
    assert _names(kept) == ["a", "u1", "u2"]
    assert info == dict(tries=1, groups_seen=4, uniform_seen=3, uniform_dropped=1,
                        uniform_filler=2, surplus_dropped=0, trajectories_kept=6)


def test_truncation_on_the_last_try():
    """The last try takes floor(deficit / G) groups even when it offers more."""
    rollout = Script([N("a")], [N("b"), N("c"), N("d"), U("u")])
    kept, info = dynamic_sample(rollout, target_trajectories=6, group_size=G, max_tries=2)
    assert _names(kept) == ["a", "b", "c"]
    assert info["surplus_dropped"] == 1 and info["uniform_filler"] == 0


def test_returns_of_callable_and_validation():
    rollout = Script([("g1", [1.0, 0.0]), ("g2", [2.0, 2.0])])
    kept, _ = dynamic_sample(rollout, 2, G, 3, returns_of=lambda g: g[1])
    assert kept == [("g1", [1.0, 0.0])]
    with pytest.raises(ValueError, match="multiple"):
        dynamic_sample(Script([]), 5, G, 3)
    with pytest.raises(ValueError, match="max_tries"):
        dynamic_sample(Script([]), 4, G, 0)
    with pytest.raises(ValueError, match="expected 2"):
        dynamic_sample(Script([Grp("bad", [1.0, 0.0, 0.0])]), 4, G, 3)


def test_invariants_on_random_rollouts():
    """Never above the target, whole groups, at most max_tries calls, uniform only after the last."""
    rng = random.Random(0)
    for _ in range(200):
        g, target, max_tries = rng.randint(1, 4), rng.randint(0, 6), rng.randint(1, 4)
        target *= g
        batches = [[Grp(f"{t}.{i}", [float(rng.random() < 0.3) for _ in range(g)])
                    for i in range(rng.randint(0, 6))] for t in range(max_tries)]
        rollout = Script(*batches)
        kept, info = dynamic_sample(rollout, target, g, max_tries)
        assert len(kept) * g == info["trajectories_kept"] <= target
        assert rollout.calls == info["tries"] <= max_tries
        if any(is_uniform(k.returns) for k in kept):
            assert info["tries"] == max_tries
        # each kept group was seen, once; the non-uniform ones stay in rollout order
        seen = [grp.name for batch in batches[: rollout.calls] for grp in batch]
        assert len(set(_names(kept))) == len(kept) and set(_names(kept)) <= set(seen)
        order = [seen.index(k.name) for k in kept if not is_uniform(k.returns)]
        assert order == sorted(order)


def test_filter_active_cold_start_boundary():
    """Checks docs/algorithms/dynamic_sampling.md#the-rule: steps count from 1; cold start 15 -> off at 15, on at 16."""
    assert not filter_active(15, 15, enabled=True, training=True)
    assert filter_active(16, 15, enabled=True, training=True)
    assert filter_active(1, 0, enabled=True, training=True)
    assert not filter_active(100, 15, enabled=False, training=True)
    assert not filter_active(100, 15, enabled=True, training=False)  # validation: never
    with pytest.raises(ValueError, match="count from 1"):
        filter_active(0, 0, enabled=True, training=True)
