"""The one parameter source and its derived quantities against published values."""

import numpy as np
import pytest

from spikescale.models.pd14 import derived
from spikescale.models.pd14 import params as P


def test_full_scale_counts_match_the_paper():
    net = derived.derive(1.0, 1.0, "dc")
    assert net.n_neurons == 77_169
    assert net.n_synapses == 298_880_968
    assert list(net.num_neurons) == list(P.FULL_NUM_NEURONS)


def test_psc_amplitude_from_psp():
    factor = derived.psc_over_psp(250.0, 10.0, 0.5)
    assert factor == pytest.approx(585.39, abs=0.005)
    net = derived.derive(1.0, 1.0, "poisson")
    assert net.weight_ext_pA == pytest.approx(87.81, abs=0.005)
    w = net.weight_mean_pA
    l23e, l4e = P.POPULATIONS.index("L23E"), P.POPULATIONS.index("L4E")
    assert w[l23e, l4e] == pytest.approx(2 * 87.81, abs=0.01)  # L4E -> L23E doubled
    assert w[0, 0] == pytest.approx(87.81, abs=0.005)
    assert w[0, 1] == pytest.approx(-4 * 87.81, abs=0.02)  # inhibitory g = -4
    assert np.all(w[:, 1::2] < 0) and np.all(w[:, 0::2] > 0)


def test_dc_drive_amplitudes():
    # 8 Hz x K_ext x 87.81 pA x 0.5 ms x 1e-3 (pd14.md)
    net = derived.derive(1.0, 1.0, "dc")
    expected = 8.0 * np.array(P.K_EXT) * 87.8085 * 0.5e-3
    np.testing.assert_allclose(net.dc_amp_pA, expected, rtol=1e-4)
    assert net.dc_amp_pA[0] == pytest.approx(561.97, abs=0.01)
    assert np.all(net.poisson_rate_hz == 0)


def test_poisson_drive_has_no_dc_at_full_scale():
    net = derived.derive(1.0, 1.0, "poisson")
    assert np.all(net.dc_amp_pA == 0)
    np.testing.assert_allclose(net.poisson_rate_hz, 8.0 * np.array(P.K_EXT))


def test_k_scaling_compensation_one_population_by_hand():
    """van Albada et al. 2015: weights / sqrt(K), plus a DC term for the lost mean input.
    Recompute L23E's DC by hand from the raw parameters."""
    k = 0.1
    net = derived.derive(0.1, k, "poisson")
    full = derived.full_scale_synapses()
    n = np.array(P.FULL_NUM_NEURONS)
    psc = 0.15 * derived.psc_over_psp(250.0, 10.0, 0.5)
    w0 = derived.weight_matrix_psp_mV()[0] / 0.15 * psc  # row of L23E targets, pA
    rec_input = sum(w0[j] * full[0, j] / n[0] * P.FULL_MEAN_RATES_HZ[j] for j in range(8))
    ext_input = psc * P.K_EXT[0] * 8.0
    expected_dc = 0.5e-3 * (1 - np.sqrt(k)) * (rec_input + ext_input)
    assert net.dc_amp_pA[0] == pytest.approx(expected_dc, rel=1e-12)
    assert net.weight_ext_pA == pytest.approx(psc / np.sqrt(k))
    assert list(net.ext_indegree) == [round(x * k) for x in P.K_EXT]


def test_scale_0_1_counts():
    net = derived.derive(0.1, 0.1, "poisson")
    assert net.n_neurons == 7_717
    full = derived.full_scale_synapses()
    assert net.n_synapses == int(np.round(full * 0.01).astype(int).sum())
    assert net.n_synapses == 2_988_807


def test_synapse_formula_with_replacement():
    # K = ln(1 - C) / ln(1 - 1 / (Npre Npost)); for one pair by hand
    k = derived.synapses_from_conn_probs([[0.1]], [100], [200])[0, 0]
    assert k == pytest.approx(np.log(0.9) / np.log(1 - 1 / 20000))


def test_thalamic_input_targets_only_l4_and_l6():
    net = derived.derive(1.0, 1.0, "dc", thalamic_input=True)
    targets = [P.POPULATIONS[i] for i in np.flatnonzero(net.num_th_synapses)]
    assert targets == ["L4E", "L4I", "L6E", "L6I"]
    assert derived.derive(1.0, 1.0, "dc").num_th_synapses.sum() == 0


def test_nest_virtual_process_cap():
    full = derived.derive(1.0, 1.0, "dc")
    assert derived.min_virtual_processes_nest(full) == 3  # 2 VPs fail after minutes in NEST
    assert derived.min_virtual_processes_nest(derived.derive(0.1, 0.1, "poisson")) == 1


def test_out_degree_times_neurons_is_synapses():
    net = derived.derive(0.1, 0.1, "poisson")
    assert float(np.dot(net.out_degree, net.num_neurons)) == pytest.approx(net.n_synapses)


@pytest.mark.parametrize("n,k,drive", [(0, 1, "dc"), (1.5, 1, "dc"), (1, -0.1, "dc"), (1, 1, "ac")])
def test_derive_rejects_bad_settings(n, k, drive):
    with pytest.raises(ValueError):
        derived.derive(n, k, drive)
