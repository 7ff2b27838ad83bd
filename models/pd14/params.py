"""The one parameter source of the Potjans & Diesmann (2014) cortical microcircuit.

Every number of the model lives here, once, with its unit. Everything that follows from
these numbers (synapse counts, PSC amplitudes, DC compensation, ...) is computed in
``spikescale.models.pd14.derived`` and nowhere else. Values follow Potjans & Diesmann (2014),
Cereb. Cortex 24(3):785-806, as the INM-6 reference package
(``microcircuit-PD14-model``: network_params.py, stimulus_params.py) states them.
"""

from types import MappingProxyType

# Population order is fixed: every per-population array below uses it.
POPULATIONS = ("L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I")

# Neurons per population at full scale (77,169 in all).
FULL_NUM_NEURONS = (20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948)

# Connection probabilities C[target][source], rows = target, columns = source.
CONN_PROBS = (
    (0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0),
    (0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0),
    (0.0077, 0.0059, 0.0497, 0.135, 0.0067, 0.0003, 0.0453, 0.0),
    (0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0),
    (0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0),
    (0.0548, 0.0269, 0.0257, 0.0022, 0.06, 0.3158, 0.0086, 0.0),
    (0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252),
    (0.0364, 0.001, 0.0034, 0.0005, 0.0277, 0.008, 0.0658, 0.1443),
)

# Full-scale mean firing rates (spikes/s, NEST, Poisson drive). Used by the K_scaling < 1
# DC compensation (van Albada et al. 2015) and as the reference activity.
FULL_MEAN_RATES_HZ = (0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829)

# External (cortico-cortical background) in-degree per population.
K_EXT = (1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100)
BG_RATE_HZ = 8.0  # rate of each external background source (spikes/s)
DELAY_POISSON_MS = 1.5  # delay of the background Poisson input (ms)

# Neuron model: iaf_psc_exp, the same for all populations.
NEURON_MODEL = "iaf_psc_exp"
NEURON = MappingProxyType(
    {
        "C_m_pF": 250.0,  # membrane capacitance
        "tau_m_ms": 10.0,  # membrane time constant
        "tau_syn_ms": 0.5,  # excitatory and inhibitory synaptic time constant
        "t_ref_ms": 2.0,  # absolute refractory period
        "E_L_mV": -65.0,  # resting potential
        "V_reset_mV": -65.0,  # reset potential
        "V_th_mV": -50.0,  # spike threshold
    }
)

# "Optimized" initial membrane potentials: normal per population (mV).
V0_MEAN_MV = (-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43)
V0_STD_MV = (5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48)

# Synaptic weights, given as PSP amplitudes.
PSP_EXC_MEAN_MV = 0.15  # mean excitatory PSP amplitude
L4E_TO_L23E_FACTOR = 2.0  # the L4E -> L23E projection is twice as strong
G_INH = -4.0  # relative strength of inhibitory synapses
WEIGHT_REL_STD = 0.1  # sd of weights relative to their mean; sign kept by redrawing

# Synaptic delays: normal, sd relative to the mean, redrawn to be at least one step.
DELAY_EXC_MEAN_MS = 1.5
DELAY_INH_MEAN_MS = 0.75
DELAY_REL_STD = 0.5

# Optional thalamic input: a burst of Poisson spikes from a thalamic population.
THALAMUS = MappingProxyType(
    {
        "num_neurons": 902,  # not scaled with N_scaling (as in the reference)
        "rate_hz": 120.0,
        "start_ms": 700.0,  # model time, counted from the start of the presimulation
        "duration_ms": 10.0,
        # connection probabilities onto the 8 populations (L4E L4I L6E L6I only)
        "conn_probs": (0.0, 0.0, 0.0983, 0.0619, 0.0, 0.0, 0.0512, 0.0196),
        "psp_mV": 0.15,
        "delay_mean_ms": 1.5,
        "delay_rel_std": 0.5,
    }
)

# NEST keeps at most this many connections per virtual process and synapse model
# ("Too many connections"); a full-scale PD14 needs >= 3 virtual processes.
NEST_MAX_CONNECTIONS_PER_VP = 134_217_726
