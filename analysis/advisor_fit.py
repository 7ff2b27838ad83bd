"""Fitting one figure's model (spikescale.perf_model) to measured runs, with uncertainty.

The constants are found by non-negative least squares on relative errors (every term is a
cost: none may be negative; a run of 2 s and one of 200 s count alike). A term the campaign
cannot tell apart from the others (its feature is zero everywhere, or moves with the others:
one model size cannot separate work per event from work per neuron, one rank cannot show
communication) is not fitted, and the fit says why; a prediction that leans on it says so.

Uncertainty comes from a residual bootstrap: the relative residuals of the fit (the spread
over seeds and repetitions, and whatever the form does not capture) are drawn again onto the
fitted values, the constants fitted again, many times. Intervals are percentiles of those
refits; a prediction's interval adds one more drawn residual, as a new run would have.
A pairs bootstrap over runs was the alternative: with two seeds per configuration it has
three distinct resamples per point and gives intervals that are too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from spikescale.perf_model import Configuration, Term, features

DEFAULT_RESAMPLES = 1000
LEVEL = 0.95
# A term whose feature column keeps less than this share of its length once the columns of
# the terms before it are projected out is not determined by the campaign (normalised columns
# of the design as planned: measured events and spikes averaged per model size, so that the
# scatter of one size's runs cannot pass for a second size). Terms that are told apart only
# weakly are kept: the bootstrap then spreads between them and the intervals widen where
# they predict differently, which is what an extrapolation should show.
MIN_INDEPENDENT_SHARE = 0.002


@dataclass(frozen=True)
class Prediction:
    value: float  # the fitted model's figure
    low: float  # the interval a new run is expected in (LEVEL)
    high: float
    mean_low: float  # the interval of the model's figure alone (no new run's scatter)
    mean_high: float


@dataclass
class Fit:
    figure: str
    terms: tuple[Term, ...]
    used: list[str]
    dropped: dict[str, str]  # term -> why the campaign does not determine it
    constants: dict[str, float]
    boot: np.ndarray  # (resamples, len(used)) refitted constants
    rel_residuals: np.ndarray  # of the fit, scaled for the degrees of freedom used
    configs: list[Configuration]
    measured: np.ndarray
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    planned: list[Configuration] = field(default_factory=list)  # the runs as planned (size means)

    @property
    def n_runs(self) -> int:
        return len(self.measured)

    def interval(self, name: str, level: float = LEVEL) -> tuple[float, float]:
        if name not in self.used:
            return (np.nan, np.nan)
        col = self.boot[:, self.used.index(name)]
        tail = (1.0 - level) / 2.0
        return float(np.quantile(col, tail)), float(np.quantile(col, 1.0 - tail))

    def _row(self, config: Configuration) -> np.ndarray:
        return np.array([t.feature(config) for t in self.terms if t.name in self.used], dtype=float)

    def predict(self, config: Configuration, level: float = LEVEL) -> Prediction:
        row = self._row(config)
        value = float(row @ np.array([self.constants[name] for name in self.used]))
        means = self.boot @ row
        rng = np.random.default_rng(self.seed + 1)
        noisy = means * (1.0 + rng.choice(self.rel_residuals, size=len(means)))
        tail = (1.0 - level) / 2.0
        return Prediction(value, *(float(v) for v in np.quantile(noisy, [tail, 1.0 - tail])),
                          *(float(v) for v in np.quantile(means, [tail, 1.0 - tail])))

    def leans_on_missing(self, config: Configuration) -> list[str]:
        """Terms not fitted whose cost at ``config`` the fitted terms would not carry: over the
        fitted runs (as planned) a dropped term's feature is some mix of the kept ones' (that
        is why it was dropped); where that mix at ``config`` misses its feature by more than
        5 %, the prediction leaves out a cost the campaign never showed apart (one model size
        predicting another: neurons per thread no longer in the proportion to synapses they
        had). A term zero in every run is left out wherever its feature is not zero."""
        kept = [t for t in self.terms if t.name in self.used]
        basis = features(tuple(kept), self.planned) if kept else np.zeros((len(self.planned), 0))
        here = np.array([t.feature(config) for t in kept])
        out = []
        for term in self.terms:
            if term.name not in self.dropped:
                continue
            column = np.array([term.feature(c) for c in self.planned])
            mix = np.linalg.lstsq(basis, column, rcond=None)[0] if kept else np.zeros(0)
            carried, value = float(here @ mix), term.feature(config)
            if abs(value - carried) > 0.05 * max(abs(value), abs(carried), 1e-300):
                out.append(term.name)
        return out

    def relative_variance_at(self, config: Configuration, extra: list[Configuration] = ()) -> float:
        """Variance of the model's relative figure at ``config`` from the weighted least-squares
        information, with runs at ``extra`` added (what an extra measurement would buy)."""
        rows = [self._row(c) for c in self.configs] + [self._row(c) for c in extra]
        values = list(self.measured) + [max(self._row(c) @ self._const_vector(), 1e-300) for c in extra]
        design = np.array(rows) / np.array(values)[:, None]
        scale = np.linalg.norm(design, axis=0)
        scale[scale == 0] = 1.0
        info = (design / scale).T @ (design / scale)
        x = self._row(config) / scale
        y = max(float(self._row(config) @ self._const_vector()), 1e-300)
        return float(x @ np.linalg.pinv(info) @ x) / y**2

    def design_fitted(self) -> np.ndarray:
        """The fitted figure at each fitted run."""
        return np.array([self._row(c) for c in self.configs]) @ self._const_vector()

    def _const_vector(self) -> np.ndarray:
        return np.array([self.constants[name] for name in self.used])


def determined_terms(terms: tuple[Term, ...], design: np.ndarray) -> tuple[list[int], dict[str, str]]:
    """The terms the design can tell apart, in their declared order, and why the others not."""
    kept: list[int] = []
    dropped: dict[str, str] = {}
    for j, term in enumerate(terms):
        col = design[:, j]
        norm = np.linalg.norm(col)
        if norm == 0.0:
            dropped[term.name] = "its feature is zero in every run of the campaign"
            continue
        col = col / norm
        if kept:
            basis = design[:, kept] / np.linalg.norm(design[:, kept], axis=0)
            coef, *_ = np.linalg.lstsq(basis, col, rcond=None)
            independent = float(np.linalg.norm(col - basis @ coef))
        else:
            independent = 1.0
        if independent < MIN_INDEPENDENT_SHARE:
            others = ", ".join(terms[k].name for k in kept)
            dropped[term.name] = (f"moves with {others} in this campaign (only {independent:.1%} of it is "
                                  "independent): the campaign cannot tell them apart")
            continue
        kept.append(j)
    return kept, dropped


def _nnls_relative(design: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Non-negative constants minimising the sum of squared relative errors. Weighting by the
    measured values themselves biases the fit towards the runs that came out low; a second
    pass weights by the first pass's fitted values instead."""
    coef = _nnls_weighted(design, measured, measured)
    fitted = design @ coef
    if np.all(fitted > 0):
        coef = _nnls_weighted(design, measured, fitted)
    return coef


def _nnls_weighted(design: np.ndarray, measured: np.ndarray, scale_of: np.ndarray) -> np.ndarray:
    a = design / scale_of[:, None]
    norm = np.linalg.norm(a, axis=0)
    norm[norm == 0] = 1.0
    coef, _ = nnls(a / norm, measured / scale_of, maxiter=50 * a.shape[1])
    return coef / norm


def fit(figure: str, terms: tuple[Term, ...], configs: list[Configuration], measured,
        resamples: int = DEFAULT_RESAMPLES, seed: int = 0, planned: list[Configuration] | None = None) -> Fit:
    """Fit ``terms`` to the ``measured`` figure of runs at ``configs`` (finite, positive values).
    ``planned``: the same runs as planned (their size's mean events and spikes), which decide
    the terms the campaign determines; ``configs`` where not given."""
    measured = np.asarray(measured, dtype=float)
    if len(configs) != len(measured):
        raise ValueError("one measured value per configuration")
    if len(measured) == 0 or not np.all(np.isfinite(measured)) or np.any(measured <= 0):
        raise ValueError(f"{figure}: needs finite, positive measured values (got {len(measured)} run(s))")
    design_all = features(terms, configs)
    kept, dropped = determined_terms(terms, features(terms, planned) if planned is not None else design_all)
    design = design_all[:, kept]
    used = [terms[j].name for j in kept]
    coef = _nnls_relative(design, measured)
    fitted = design @ coef
    rel = measured / fitted - 1.0
    dof = len(measured) - len(kept)
    notes = []
    if dof <= 0:
        notes.append(f"{figure}: as many terms as runs: the spread over seeds cannot be told from the fit")
        rel_scaled = np.zeros(1)
    else:
        rel_scaled = (rel - rel.mean()) * np.sqrt(len(measured) / dof)
    rng = np.random.default_rng(seed)
    boot = np.empty((resamples, len(kept)))
    for b in range(resamples):
        redrawn = fitted * (1.0 + rng.choice(rel_scaled, size=len(fitted)))
        boot[b] = _nnls_relative(design, np.maximum(redrawn, 1e-12 * fitted))
    return Fit(figure, tuple(terms), used, dropped, dict(zip(used, (float(c) for c in coef))), boot, rel_scaled,
               list(configs), measured, seed, notes, list(planned if planned is not None else configs))
