"""Validation statistics (analysis/validation.py) on spike trains with known properties.

The end-to-end checks with NEST (a correct run valid, a run with weights off by 20 %
invalid) are in test_workflow.py."""

from __future__ import annotations

import numpy as np
import pytest

from spikescale.analysis import validation as V

POPS = ("A", "B")


def poisson_data(rates_hz, n=300, t_stop_ms=2000.0, seed=0, refractory_ms=0.0) -> V.SpikeData:
    """Independent Poisson trains, population i firing at rates_hz[i]; ids start at 1 as in NEST."""
    rng = np.random.default_rng(seed)
    senders, times, first = {}, {}, []
    next_id = 1
    for pop, rate in zip(POPS, rates_hz):
        first.append(next_id)
        s, t = [], []
        for j in range(n):
            k = rng.poisson(rate * t_stop_ms / 1000.0)
            spikes = np.sort(rng.uniform(0.0, t_stop_ms, size=k))
            if refractory_ms:
                spikes = spikes[np.concatenate([[True], np.diff(spikes) > refractory_ms])]
            s.append(np.full(spikes.size, next_id + j))
            t.append(spikes)
        senders[pop], times[pop] = np.concatenate(s), np.concatenate(t)
        next_id += n
    return V.SpikeData(populations=POPS, num_neurons=np.array([n, n]), first_ids=np.array(first),
                       senders=senders, times_ms=times, t_start_ms=500.0, t_stop_ms=t_stop_ms)


def test_statistics_of_poisson_trains_are_what_theory_says():
    stats = V.population_statistics(poisson_data([5.0, 20.0]))
    assert stats["A"]["rate_hz"].size == 300  # every neuron, silent ones included
    assert stats["A"]["rate_hz"].mean() == pytest.approx(5.0, rel=0.1)
    assert stats["B"]["rate_hz"].mean() == pytest.approx(20.0, rel=0.05)
    assert np.median(stats["B"]["cv_isi"]) == pytest.approx(1.0, abs=0.1)  # Poisson: CV 1
    corr = stats["B"]["correlation"]
    assert corr.size == V.CORRELATION_SUBSAMPLE * (V.CORRELATION_SUBSAMPLE - 1) // 2
    assert abs(corr.mean()) < 0.01  # independent trains


def test_window_excludes_the_warm_up_and_silent_neurons_count():
    data = poisson_data([10.0, 10.0])
    # every spike of population A before the window: all its neurons are silent in it
    data.times_ms["A"] = data.times_ms["A"] * (data.t_start_ms / data.t_stop_ms) * 0.99
    stats = V.population_statistics(data)
    assert stats["A"]["rate_hz"].size == 300 and not stats["A"]["rate_hz"].any()
    assert stats["A"]["cv_isi"].size == 0 and stats["A"]["correlation"].size == 0


def test_senders_outside_the_population_are_an_error():
    data = poisson_data([5.0, 5.0])
    data.senders["A"] = data.senders["A"] + 1000
    with pytest.raises(ValueError, match="outside the population"):
        V.population_statistics(data)


def _ensemble(rates, seeds):
    members = [V.population_statistics(poisson_data(rates, seed=s)) for s in seeds]
    return members, V.reference_spread(members)


def test_a_run_of_the_same_model_is_valid_and_a_shifted_one_is_not():
    members, spread = _ensemble([5.0, 10.0], range(10))
    same = V.compare(V.population_statistics(poisson_data([5.0, 10.0], seed=99)), members, spread)
    assert V.verdict(same) == "valid"
    assert all(r["distance"] <= r["threshold"] for r in same)
    shifted = V.compare(V.population_statistics(poisson_data([6.0, 12.0], seed=99)), members, spread)
    text = V.verdict(shifted)
    assert text.startswith("invalid: ") and "A rate_hz" in text and "B rate_hz" in text
    # a refractory period changes the ISI CVs but hardly the rates
    regular = V.compare(V.population_statistics(poisson_data([5.0, 10.0], seed=99, refractory_ms=40.0)),
                        members, spread)
    outside = {(r["population"], r["statistic"]) for r in regular if not r["inside"]}
    assert ("B", "cv_isi") in outside


def test_one_pair_outside_is_allowed_by_default_and_named():
    rows = [{"population": p, "statistic": s, "distance": 0.1, "threshold": 0.2, "inside": True}
            for p in POPS for s in V.STATISTICS]
    rows[4].update(distance=0.3, inside=False)
    assert V.verdict(rows) == "valid (1 of 6 outside the reference spread, 1 allowed)"
    assert V.verdict(rows, max_outside=0) == "invalid: 1 of 6 outside the reference spread: B cv_isi KS 0.300 > 0.200"


def test_silent_populations_are_compared_honestly():
    members, spread = _ensemble([5.0, 0.0], range(5))  # B silent in the reference
    silent_too = V.compare(V.population_statistics(poisson_data([5.0, 0.0], seed=7)), members, spread)
    rows = {(r["population"], r["statistic"]): r for r in silent_too}
    assert rows[("B", "cv_isi")]["inside"] and rows[("B", "cv_isi")]["note"] == "no data in run or reference"
    active = V.compare(V.population_statistics(poisson_data([5.0, 3.0], seed=7)), members, spread)
    rows = {(r["population"], r["statistic"]): r for r in active}
    assert not rows[("B", "cv_isi")]["inside"] and rows[("B", "cv_isi")]["distance"] == 1.0
    assert not rows[("B", "rate_hz")]["inside"]  # rates exist on both sides (zeros) and differ


def test_ks_distance():
    assert np.isnan(V.ks_distance(np.array([]), np.array([1.0])))
    assert V.ks_distance(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert V.ks_distance(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
