"""Energy at the power outlet (spikescale.energy.outlet, applied by collect): the run's own
simulation energy plus what the machine file declares the meters do not see.

The measured part is real: NEST runs through the harness with RAPL read from a file tree laid
out like sysfs (tests/fake_powercap.py; this machine has no powercap), and an emulated
SpiNNaker run with its modelled board energy. The records are then collected as the workflow
collects them, under machine declarations given here."""

from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pytest
import yaml

from helpers import REPO, run_spec, write_yaml
from spikescale.config import load_campaign
from spikescale.energy.outlet import outlet_energy
from spikescale.errors import ConfigError
from spikescale.jobs import run_context
from spikescale.plan import plan_runs
from spikescale.store import collect

# A cluster node's declaration (numbers made up for the test, round so the sum is easy to follow)
OUTLET = {"source": "test sheet, 2026-11-30", "psu_efficiency": 0.8, "pue": 1.5, "network_w_per_node": 20.0,
          "storage_w_per_node": 5.0, "idle_nodes_held": 2, "idle_node_w": 100.0}


def expected_outlet_j(energy_sim_j: float, t_s: float, nodes: int = 1) -> float:
    """The formula of docs/energy.md, written out on the declaration above."""
    return (energy_sim_j / 0.8 + (20.0 + 5.0) * nodes * t_s + 2 * 100.0 * t_s) * 1.5


def _collected(record, tmp_path, machine: dict | None, name: str):
    """One record collected as the workflow's collect does, with the machine file `machine`
    (named 'cluster' in the experiment); runs.csv read back as text, as the analysis reads it."""
    rundir = tmp_path / name / "runs"
    rundir.mkdir(parents=True)
    (rundir / record.name).symlink_to(record)
    resolved = None if machine is None else {"experiment": {"machine": "cluster"}, "machine": machine}
    collect([rundir / record.name], "test", tmp_path / name / "campaign.h5", tmp_path / name / "runs.csv", resolved)
    return pd.read_csv(tmp_path / name / "runs.csv", keep_default_na=False).iloc[0]


def _harness(python, spec, out, context, env):
    argv = [str(python), "-m", "spikescale.harness", "--spec", json.dumps(spec, sort_keys=True),
            "--context", json.dumps(context, sort_keys=True), "--out", str(out)]
    proc = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def nest_records(tmp_path_factory):
    """Two real NEST runs (scale 0.02): one with RAPL counting 10 W on package-0 of a fake
    powercap tree while it runs, one with no powercap at all."""
    from test_energy import run_with_energy  # the same harness run test_energy checks the meters with

    tmp = tmp_path_factory.mktemp("outlet")
    (tmp / "metered").mkdir()
    (tmp / "unmetered").mkdir()
    machine = {"machine": {"energy": {"nvml": False, "sampling_hz": 20}}}
    out = {}
    for name, kwargs in (("metered", {"writer_watts": 10.0}),
                         ("unmetered", {"env_extra": {"SPIKESCALE_POWERCAP_ROOT": str(tmp / "none")}})):
        rec, _ = run_with_energy(tmp / name, machine, seed=3 if name == "metered" else 4, **kwargs)
        path = tmp / name / "run.h5"
        out[name] = path.rename(tmp / name / f"{rec['attrs']['run_id']}.h5")
    return out


@pytest.mark.needs_nest
def test_outlet_energy_of_a_metered_nest_run_follows_the_formula(nest_python, nest_records, tmp_path):
    row = _collected(nest_records["metered"], tmp_path, {"name": "cluster", "energy": {"outlet": OUTLET}}, "a")
    energy_sim_j, t_sim_s = float(row["energy_sim_j"]), float(row["t_sim_s"])
    assert row["energy_kind"] == "measured" and energy_sim_j == pytest.approx(10.0 * t_sim_s, rel=0.2, abs=0.05)
    assert float(row["energy_outlet_sim_j"]) == pytest.approx(expected_outlet_j(energy_sim_j, t_sim_s), rel=1e-12)
    # the declared terms are several times the metered 10 W here: the outlet figure is not a rescaling
    assert float(row["energy_outlet_sim_j"]) > 1.5 * (energy_sim_j / 0.8) + 300 * t_sim_s
    assert float(row["esyn_outlet_uj"]) == pytest.approx(
        float(row["energy_outlet_sim_j"]) / float(row["synaptic_events"]) * 1e6, rel=1e-12)
    source = row["energy_outlet_source"]
    assert source.startswith("measured node energy ") and "(rapl dram-0, rapl package-0 on 1 node(s))" in source
    for part in ("psu_efficiency 0.8", "network 20 W x 1 node(s)", "storage 5 W x 1 node(s)",
                 "2 idle held node(s) x 100 W", f"t_sim_s {t_sim_s:.6g} s", "pue 1.5",
                 "machine file cluster.yaml energy.outlet, source: test sheet, 2026-11-30"):
        assert part in source, (part, source)
    assert "not declared" not in source
    # the measured columns stay what the run measured
    assert float(row["esyn_uj"]) == pytest.approx(energy_sim_j / float(row["synaptic_events"]) * 1e6)


@pytest.mark.needs_nest
def test_a_corrected_declaration_applies_at_the_next_collect(nest_python, nest_records, tmp_path):
    """Only psu_efficiency and pue: the other terms are named as not declared, and the figure
    changes with the machine file, from the same record (nothing ran again)."""
    outlet = {"source": "wall meter at the desk", "psu_efficiency": 0.9, "pue": 1.0}
    row = _collected(nest_records["metered"], tmp_path, {"energy": {"outlet": outlet}}, "b")
    assert float(row["energy_outlet_sim_j"]) == pytest.approx(float(row["energy_sim_j"]) / 0.9, rel=1e-12)
    assert "not declared (0 W): network_w_per_node, storage_w_per_node, idle_nodes_held" in row["energy_outlet_source"]


@pytest.mark.needs_nest
def test_no_declaration_no_outlet_figure(nest_python, nest_records, tmp_path):
    row = _collected(nest_records["metered"], tmp_path, {"name": "cluster", "energy": {"rapl": True}}, "c")
    assert row["energy_sim_j"] != ""  # measured, but nothing declared beyond it
    assert row["energy_outlet_sim_j"] == "" and row["esyn_outlet_uj"] == ""
    assert row["energy_outlet_source"] == "unavailable: machine file cluster.yaml declares no energy.outlet"
    row = _collected(nest_records["metered"], tmp_path, None, "d")  # collected without a configuration
    assert row["energy_outlet_source"].startswith("unavailable: collected without the campaign's configuration")


@pytest.mark.needs_nest
def test_no_measured_energy_no_outlet_figure(nest_python, nest_records, tmp_path):
    row = _collected(nest_records["unmetered"], tmp_path, {"energy": {"outlet": OUTLET}}, "e")
    assert row["energy_sim_j"] == "" and row["energy_outlet_sim_j"] == "" and row["esyn_outlet_uj"] == ""
    source = row["energy_outlet_source"]
    assert source.startswith("unavailable: no measured energy of the simulation phase (")
    assert "rapl: no powercap interface" in source  # the run's own reason, carried over


@pytest.mark.needs_nest
def test_rtf_energy_table_shows_the_outlet_figure_beside_the_measured_one(nest_python, nest_records, tmp_path):
    from spikescale.analysis.rtf_energy_table import rtf_energy_table

    _collected(nest_records["metered"], tmp_path, {"energy": {"outlet": OUTLET}}, "f")
    runs = pd.read_csv(tmp_path / "f" / "runs.csv")
    table = rtf_energy_table(runs, include_disturbed=True)  # a busy test machine may disturb the one run
    assert len(table) == 1
    row = table.iloc[0]
    assert row["esyn_uj_mean"] == pytest.approx(runs["esyn_uj"].iloc[0])
    assert row["esyn_outlet_uj_mean"] == pytest.approx(runs["esyn_outlet_uj"].iloc[0])
    assert row["esyn_outlet_uj_mean"] > row["esyn_uj_mean"]
    assert row["energy_outlet_source"].startswith("measured node energy ")
    assert row["n_runs_esyn_outlet"] == 1


@pytest.mark.needs_spinnaker
def test_an_emulated_spinnaker_runs_outlet_figure_is_modelled(tmp_path):
    """The emulated board's modelled energy is for its modelled time (t_sim_modelled_s), not
    for the emulator's wall time; the outlet figure built on it is labelled modelled."""
    spec = run_spec(backend="spinnaker", seed=1)
    context = {"machine": {"name": "local", "spinnaker": {"fallback": "emulate"}},
               "software": {"versions": {"sPyNNaker": "1!7.4.1"}}}
    (tmp_path / "run").mkdir()
    record = _harness(REPO / ".venvs" / "spinnaker" / "bin" / "python", spec, tmp_path / "run" / f"{spec['run_id']}.h5", context,
                      {"TMPDIR": str(tmp_path)})
    row = _collected(record, tmp_path, {"energy": {"outlet": OUTLET}}, "g")
    assert str(row["emulated"]) == "True" and row["energy_kind"] == "modelled"
    t_board_s = float(row["t_sim_modelled_s"])
    assert t_board_s != pytest.approx(float(row["t_sim_s"]))  # the emulator's own time is another
    assert float(row["energy_outlet_sim_j"]) == pytest.approx(expected_outlet_j(float(row["energy_sim_j"]), t_board_s),
                                                              rel=1e-12)
    source = row["energy_outlet_source"]
    assert source.startswith("modelled: the emulated platform's modelled energy ")
    assert "SpiNNFrontEndCommon energy model" in source and f"t_sim_modelled_s {t_board_s:.6g} s" in source


def test_accounted_node_energy_is_said_to_be_accounted():
    """No meter here reports accounted phase energies (SLURM accounts whole steps only:
    energy_job_j), so this is the arithmetic on a row as collect would hand it."""
    row = {"status": "ok", "energy_sim_j": 400.0, "t_sim_s": 2.0, "nodes": 2, "synaptic_events": 4e8,
           "energy_kind": "accounted", "energy_source": "accounted: slurm node", "emulated": False}
    energy_j, esyn_uj, source = outlet_energy(row, OUTLET, "cluster.yaml")
    assert energy_j == pytest.approx((400.0 / 0.8 + 25.0 * 2 * 2.0 + 200.0 * 2.0) * 1.5)
    assert esyn_uj == pytest.approx(energy_j / 4e8 * 1e6)
    assert source.startswith("accounted (SLURM) node energy 400 J (slurm node), not measured by the run")
    assert "network 20 W x 2 node(s)" in source
    failed = {**row, "status": "failed", "failed_phase": "simulate", "energy_sim_j": "", "energy_unavailable": ""}
    assert outlet_energy(failed, OUTLET, "cluster.yaml")[2] == \
        "unavailable: no measured energy of the simulation phase (the run failed in phase simulate)"


# -- the declaration ------------------------------------------------------------------------

def _machine_with(config_dir, outlet) -> str:
    path = config_dir / "machine" / "local.yaml"
    machine = yaml.safe_load(path.read_text())
    machine["energy"] = {"outlet": outlet}
    write_yaml(path, machine)
    return str(path)


@pytest.mark.parametrize("key, value, allowed", [
    ("psu_efficiency", 0, "must be > 0"),
    ("psu_efficiency", 1.5, "must be <= 1"),
    ("pue", 0.9, "must be >= 1"),
    ("network_w_per_node", -5.0, "must be >= 0"),
    ("storage_w_per_node", -0.1, "must be >= 0"),
    ("idle_node_w", -1.0, "must be >= 0"),
    ("idle_nodes_held", 1.5, "must be a whole number"),
    ("source", None, "missing required key"),
    ("pue", None, "missing required key"),
    ("source", "   ", "must say where the numbers come from"),
    ("idle_node_w", None, "missing: energy.outlet.idle_nodes_held is 2"),
    ("wall_w", 3.0, ("unknown key; allowed keys: idle_node_w, idle_nodes_held, network_w_per_node, psu_efficiency, "
                     "pue, source, storage_w_per_node")),
])
def test_bad_declarations_are_refused_with_file_key_value_and_what_is_allowed(config_dir, key, value, allowed):
    outlet = dict(OUTLET)
    if value is None:
        del outlet[key]
    else:
        outlet[key] = value
    machine_file = _machine_with(config_dir, outlet)
    with pytest.raises(ConfigError) as info:
        load_campaign("tiny", config_dir)
    problems = info.value.problems
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.file, problem.key) == (machine_file, f"energy.outlet.{key}")
    assert problem.value == value and problem.allowed.startswith(allowed), problem
    assert f"energy.outlet.{key} = {value!r}" in str(info.value)


def test_a_good_declaration_loads_and_stays_out_of_every_runs_context(config_dir):
    """Applied at collect: changing it changes no run's command, so no run runs again."""
    _machine_with(config_dir, OUTLET)
    campaign = load_campaign("tiny", config_dir)
    assert campaign.machine["energy"]["outlet"] == OUTLET and campaign.machine["energy"]["rapl"] is True
    _machine_with(config_dir, {**OUTLET, "pue": 1.2})
    corrected = load_campaign("tiny", config_dir)
    for run, same in zip(plan_runs(campaign), plan_runs(corrected), strict=True):
        context = run_context(campaign, run)
        assert "outlet" not in context["machine"]["energy"] and context["machine"]["energy"]["rapl"] is True
        assert context == run_context(corrected, same)


def test_terms_declared_as_zero_are_not_called_undeclared():
    row = {"status": "ok", "energy_sim_j": 5.2, "t_sim_s": 0.52, "nodes": 1, "synaptic_events": 2e6,
           "energy_kind": "measured", "energy_source": "measured: rapl package-0 on 1 node(s)"}
    outlet = {"source": "desk", "psu_efficiency": 0.92, "pue": 1.0, "idle_nodes_held": 0}
    energy_j, _, source = outlet_energy(row, outlet, "local.yaml")
    assert energy_j == pytest.approx(5.2 / 0.92)
    assert source.endswith("; not declared (0 W): network_w_per_node, storage_w_per_node; declared in machine "
                           "file local.yaml energy.outlet, source: desk")


def test_the_commented_example_in_slurm_generic_is_a_valid_declaration():
    """The example users copy from (config/machine/slurm-generic.yaml), uncommented, loads."""
    from spikescale.config import _schema_problems, outlet_problems
    from spikescale.schemas import load_schema

    text = (REPO / "config" / "machine" / "slurm-generic.yaml").read_text()
    lines = text.splitlines()
    start = lines.index("  # outlet:")
    example = [line.replace("  # ", "  ", 1) if i >= start and line.startswith("  #   ") or i == start else line
               for i, line in enumerate(lines)]
    machine = yaml.safe_load("\n".join(example))
    assert machine["energy"]["outlet"]["psu_efficiency"] == 0.92 and machine["energy"]["outlet"]["idle_node_w"] == 120
    assert _schema_problems(machine, load_schema("machine"), "slurm-generic.yaml") == []
    assert outlet_problems(machine, "slurm-generic.yaml") == []


@pytest.mark.workflow
@pytest.mark.needs_nest
@pytest.mark.slow
def test_correcting_the_declaration_recollects_and_runs_nothing_again(nest_python, config_dir, tmp_path):
    """The real workflow, a tiny campaign (4 NEST runs) on a machine with a declared power model
    (this machine has no meter) and an outlet declaration; then pue corrected: snakemake
    collects again with the new figure and simulates nothing."""
    from helpers import checksums, edit_yaml, snakemake

    machine_file = config_dir / "machine" / "local.yaml"
    energy = {"rapl": False, "nvml": False,
              "power_model": {"enabled": True, "idle_w_per_node": 40.0, "w_per_busy_core": 5.0},
              "outlet": {"source": "test declaration", "psu_efficiency": 0.5, "pue": 1.0}}
    edit_yaml(machine_file, energy=energy)
    results = tmp_path / "results"
    snakemake(config_dir, results)
    out = results / "tiny"
    first = pd.read_csv(out / "runs.csv", keep_default_na=False)
    assert len(first) == 4 and (first["energy_kind"] == "modelled").all()
    assert list(first["energy_outlet_sim_j"]) == pytest.approx(list(first["energy_sim_j"] * 2.0), rel=1e-12)
    assert first["energy_outlet_source"].str.startswith("modelled node energy ").all()
    assert first["energy_outlet_source"].str.contains("source: test declaration").all()

    before = checksums(out / "runs")
    edit_yaml(machine_file, energy={**energy, "outlet": {**energy["outlet"], "pue": 1.5}})
    again = snakemake(config_dir, results)
    log = again.stdout + again.stderr
    assert "(Rule: simulate_" not in log and "(Rule: collect" in log
    assert checksums(out / "runs") == before  # no run ran again
    second = pd.read_csv(out / "runs.csv", keep_default_na=False).set_index("run_id").loc[first["run_id"]]
    assert list(second["energy_outlet_sim_j"]) == pytest.approx(list(first["energy_sim_j"] * 3.0), rel=1e-12)
    assert list(second["energy_sim_j"]) == list(first["energy_sim_j"])  # what the runs measured is untouched
