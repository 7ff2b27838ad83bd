"""Load and validate a campaign's configuration, split by owner as beNNch does.

An experiment file (config/experiment/<name>.yaml) names a model, a machine and a software
file. Each is checked against its JSON schema (workflow/schemas/) and then semantically
(resources against the machine, NEST's connection cap, ...). All problems are collected and
raised together as one ``ConfigError`` before anything is planned or submitted.
"""

from __future__ import annotations

import math
import os
import re
import stat
import unicodedata
from pathlib import Path

import jsonschema
import yaml

from spikescale.campaign import Campaign, model_for_shape, resource_shapes
from spikescale.errors import ConfigError, ConfigProblem
from spikescale.schemas import complete, load_schema

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # names of configuration files and campaigns
PARTS = ("model", "machine", "software")  # the parts an experiment file names
# Keys every schema error message can lean on to say what is allowed.
_TYPE_NAMES = {"integer": "a whole number", "number": "a number", "string": "a string",
               "boolean": "true or false", "array": "a list", "object": "a mapping"}


def _dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed(error: jsonschema.ValidationError) -> str:
    v, s = error.validator, error.validator_value
    if v == "enum":
        return "allowed: " + ", ".join(repr(x) for x in s)
    if v == "type":
        return "must be " + " or ".join(_TYPE_NAMES.get(t, t) for t in ([s] if isinstance(s, str) else s))
    if v == "minimum":
        return f"must be >= {s}"
    if v == "exclusiveMinimum":
        return f"must be > {s}"
    if v == "maximum":
        return f"must be <= {s}"
    if v == "minItems":
        return f"must list at least {s} value(s)"
    if v == "maxLength":
        return f"must have at most {s} characters"
    if v == "maxItems":
        return f"must list at most {s} value(s)"
    if v == "uniqueItems":
        return "values must not repeat"
    if v == "pattern":
        return f"must match {s} (letters, digits, '_', '.', '-'; no spaces or shell characters)"
    if v == "required":
        return "missing; required keys: " + ", ".join(s)
    if v == "minProperties":
        return f"needs at least {s} entry"
    return error.message


# JSON Schema counts 2.0 as an integer; Python's range() and NEST do not. Whole numbers here
# are written as whole numbers, and true/false are not numbers.
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)),
)


def _schema_problems(data, schema: dict, file: str) -> list[ConfigProblem]:
    validator = _Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        key = _dotted(err.absolute_path)
        if err.validator == "additionalProperties":
            known = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(known))
            for name in extra:
                problems.append(ConfigProblem(file, _dotted([*err.absolute_path, name]), err.instance[name],
                                              "unknown key; allowed keys: " + ", ".join(known)))
        elif err.validator == "propertyNames":
            problems.append(ConfigProblem(file, _dotted([*err.absolute_path, err.instance]), err.instance,
                                          "unknown entry; " + _allowed(err.context[0] if err.context else err)))
        elif err.validator == "required":
            missing = [k for k in err.validator_value if k not in err.instance]
            for name in missing:
                problems.append(ConfigProblem(file, _dotted([*err.absolute_path, name]), None, "missing required key"))
        else:
            problems.append(ConfigProblem(file, key, err.instance, _allowed(err) + _hint(err)))
    return problems


def _hint(error: jsonschema.ValidationError) -> str:
    """Why a value that looks right is not: YAML 1.1 reads 1e12 as text, and a letter from
    another alphabet looks like its Latin twin in a message."""
    value = error.instance
    if not isinstance(value, str):
        return ""
    if error.validator == "type" and error.validator_value in ("number", "integer"):
        try:
            float(value)
        except ValueError:
            return ""
        return (f" (YAML reads {value} as text: write an exponent with a dot and a sign, e.g. 1.0e+12, or the "
                "number in full)")
    foreign = [f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in value if not c.isascii()]
    if foreign:
        return f" (the value has characters that are not ASCII: {', '.join(foreign[:3])}; type it anew)"
    return ""


MAX_CONFIG_BYTES = 1 << 20  # a configuration file is a page of YAML; 1 MiB is already absurd
MAX_YAML_DEPTH = 20  # the deepest shipped file nests 4 levels


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no tags that build objects), without aliases and without deep
    nesting: ten nested aliases expand nine strings into 3.9e8 (the "billion laughs"), and a
    safe_load of that took this machine's 24 GB before the kernel killed it."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed", event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        # PyYAML keeps the last of two equal keys without a word: say which key repeats
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_regular_file(path: Path, limit: int) -> bytes | None:
    """At most limit + 1 bytes of a regular file; None when it is something else. Opened
    without blocking and checked on the open descriptor: a FIFO would hang a plain open,
    and a link to /dev/zero has size 0 yet never ends."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _file_kind(path: Path) -> str:
    mode = path.stat().st_mode
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def read_yaml(path: Path, file_label: str, key_label: str) -> tuple[object, list[ConfigProblem]]:
    """Read a YAML file safely: no tags that build objects, no aliases, bounded size and
    depth. Returns (data, problems)."""
    try:
        raw = _read_regular_file(path, MAX_CONFIG_BYTES)
        if raw is None:
            return None, [ConfigProblem(str(path), "(file)", _file_kind(path),
                                        "must be a regular file (a link to one is fine), not a device, FIFO or socket")]
        if len(raw) > MAX_CONFIG_BYTES:
            return None, [ConfigProblem(str(path), "(file)", f"more than {MAX_CONFIG_BYTES:,} bytes",
                                        f"a configuration file may have at most {MAX_CONFIG_BYTES:,} bytes")]
    except FileNotFoundError:
        options = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        return None, [ConfigProblem(file_label, key_label, path.stem,
                                    f"no file {path}; available: {', '.join(options) or 'none'}")]
    except OSError as exc:  # a directory, no permission, ...
        return None, [ConfigProblem(str(path), "(file)", exc.strerror, "cannot be read as a file")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [ConfigProblem(str(path), "(file)", f"byte {exc.start}", "file is not valid UTF-8")]
    if "\x00" in text:
        return None, [ConfigProblem(str(path), "(file)", f"byte {text.index(chr(0))}", "file contains NUL bytes")]
    try:
        data = yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a safe loader, see _ConfigLoader)
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())[:200]
        allowed = ("each key once per mapping" if "appears twice" in first else
                   "not valid YAML (plain YAML only; tags and aliases are refused)")
        return None, [ConfigProblem(str(path), "(file)", first, allowed)]
    if not isinstance(data, dict):
        return None, [ConfigProblem(str(path), "(file)", type(data).__name__, "must be a YAML mapping")]
    # JSON schema comparisons are all false for NaN, so .nan would pass every bound: refuse
    # non-finite numbers here, where YAML's .nan and .inf come in.
    problems = [ConfigProblem(str(path), _dotted(where), value, "must be a finite number")
                for where, value in _non_finite(data)]
    return (None, problems) if problems else (data, [])


def _non_finite(node, where=()):
    if isinstance(node, float) and not math.isfinite(node):
        yield where, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite(value, (*where, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _non_finite(value, (*where, i))


def load_campaign(experiment: str | os.PathLike, config_dir: str | os.PathLike = "config") -> Campaign:
    """Load, validate and complete a campaign. ``experiment`` is a name in
    <config_dir>/experiment/ or a path to a YAML file. Raises ConfigError."""
    config_dir = Path(config_dir)
    exp_path = Path(experiment)
    if exp_path.suffix not in (".yaml", ".yml"):
        if not NAME.match(str(experiment)):
            raise ConfigError([ConfigProblem(
                "config/config.yaml (or --config)", "experiment", str(experiment),
                f"must be the name of a file in {config_dir / 'experiment'} ({NAME.pattern}) or a path to a .yaml file")])
        exp_path = config_dir / "experiment" / f"{experiment}.yaml"
    exp_label = str(exp_path)

    exp, problems = read_yaml(exp_path, "config/config.yaml", "experiment")
    if problems:
        raise ConfigError(problems)
    schema = load_schema("experiment")
    problems = _schema_problems(exp, schema, exp_label)
    exp = complete("experiment", exp)  # schema defaults, at every depth (spikescale.schemas)

    # Check the other parts too, so that one run of the checks reports every problem.
    parts, files = {}, {"experiment": exp_label}
    software, software_files = {}, {}  # variant -> part, variant -> path
    for part in PARTS:
        if any(p.key == part or p.key.startswith(f"{part}[") for p in problems):
            continue
        names = exp.get(part)
        if part == "software" and isinstance(names, list):
            wanted = [(name, f"software[{i}]") for i, name in enumerate(names)]
        elif isinstance(names, str):
            wanted = [(names, part)]
        else:
            continue
        for name, key in wanted:
            path = config_dir / part / f"{name}.yaml"
            data, read_problems = read_yaml(path, exp_label, key)
            problems += read_problems
            if data is None:
                continue
            part_problems = _schema_problems(data, load_schema(part), str(path))
            problems += part_problems
            data = complete(part, data) if not part_problems else data
            if part == "software":
                software[name], software_files[name] = data, str(path)
            else:
                parts[part], files[part] = data, str(path)
    if problems:
        raise ConfigError(problems)
    # one software file: its path, as before variants (provenance and hashes of old campaigns stay)
    files["software"] = software_files if isinstance(exp["software"], list) else software_files[exp["software"]]

    campaign = Campaign(experiment=exp, model=parts["model"], machine=parts["machine"],
                        software=software, files=files)
    problems = semantic_problems(campaign, repo_root=config_dir.resolve().parent)
    if problems:
        raise ConfigError(problems)
    return campaign


MAX_RUNS = 100_000  # runs per campaign; a plan of 10,000 takes seconds (tests/benchmarks/)


# ---------------------------------------------------------------- checks a schema cannot express
# Each check returns the problems of one concern; semantic_problems runs them in the order in
# which a ConfigError lists them.

def semantic_problems(c: Campaign, repo_root: Path) -> list[ConfigProblem]:
    """Checks a schema cannot express: resources against the machine, model against
    the simulator's limits, software against the backends."""
    problems = [*software_problems(c, repo_root), *machine_problems(c.machine, c.files["machine"]),
                *axes_problems(c), *one_process_problems(c), *spinnaker_problems(c), *mpi_problems(c),
                *step_problems(c), *validation_problems(c), *run_count_problems(c), *weak_scaling_problems(c),
                *gpu_problems(c)]
    if problems:
        return problems  # the per-shape checks need a sound campaign (weak_scaling present, runs bounded)
    return shape_problems(c)


def _multi_rank(experiment: dict) -> bool:
    """Whether some resource shape has more than one MPI rank."""
    axes = experiment["axes"]
    return any(n * t > 1 for n in axes["nodes"] for t in axes["tasks_per_node"])


def software_problems(c: Campaign, repo_root: Path) -> list[ConfigProblem]:
    """Every backend has a software entry (in some variant), every entry names its
    environment, and every variant runs some backend of the experiment."""
    f_exp = c.files["experiment"]
    problems = []
    for backend in c.experiment["backends"]:
        if not c.variants_of(backend):
            where = " or ".join(c.software_file(v) for v in c.variants)
            problems.append(ConfigProblem(where, backend, None,
                                          f"backend {backend!r} is in {f_exp} but has no software entry here"))
    if not c.single_software:
        for i, variant in enumerate(c.variants):
            if not set(c.software[variant]) & set(c.experiment["backends"]):
                problems.append(ConfigProblem(
                    f_exp, f"software[{i}]", variant,
                    f"this variant ({c.software_file(variant)}) has entries for {sorted(c.software[variant])} only, "
                    f"none of the experiment's backends {c.experiment['backends']}: it would run nothing"))
    for variant in c.variants:
        f_soft = c.software_file(variant)
        for backend, entry in c.software[variant].items():
            env = entry["environment"]
            need = {"python": "interpreter", "modules": "modules", "conda": "file"}.get(env["kind"])
            if need and need not in env:
                problems.append(ConfigProblem(f_soft, f"{backend}.environment.{need}", None,
                                              f"required with kind {env['kind']!r}"))
            if env["kind"] == "conda" and "file" in env and not (repo_root / env["file"]).resolve().is_relative_to(
                    repo_root.resolve()):
                problems.append(ConfigProblem(f_soft, f"{backend}.environment.file", env["file"],
                                              "must be a file inside the repository (envs/<backend>.yaml)"))
            elif env["kind"] == "conda" and "file" in env and not (repo_root / env["file"]).is_file():
                problems.append(ConfigProblem(f_soft, f"{backend}.environment.file", env["file"],
                                              "no such file in the repository"))
    return problems


def axes_problems(c: Campaign) -> list[ConfigProblem]:
    """The experiment's axes fit the machine: its nodes, and its cores unless oversubscribed."""
    machine, axes = c.machine, c.experiment["axes"]
    f_exp, f_machine = c.files["experiment"], c.files["machine"]
    cores, nodes_max = machine["cores_per_node"], machine["nodes_max"]
    problems = []
    for i, n in enumerate(axes["nodes"]):
        if n > nodes_max:
            problems.append(ConfigProblem(f_exp, f"axes.nodes[{i}]", n,
                                          f"machine {machine['name']!r} ({f_machine}) allows at most nodes_max = {nodes_max}"))
    if not machine["allow_oversubscription"]:
        for t in axes["tasks_per_node"]:
            for j, th in enumerate(axes["threads_per_task"]):
                if t * th > cores:
                    problems.append(ConfigProblem(
                        f_exp, f"axes.threads_per_task[{j}]", th,
                        f"tasks_per_node {t} x threads_per_task {th} = {t * th} exceeds cores_per_node = {cores} "
                        f"of machine {machine['name']!r} ({f_machine}); set allow_oversubscription there to force it"))
    return problems


def one_process_problems(c: Campaign) -> list[ConfigProblem]:
    """Backends without MPI (their declared capabilities) run as one process: no shape with
    several ranks."""
    from spikescale.backends import capabilities

    exp, f_exp = c.experiment, c.files["experiment"]
    if not _multi_rank(exp):
        return []
    return [ConfigProblem(f_exp, "backends", backend, f"{capabilities(backend).one_process_why}: use "
                          f"tasks_per_node [1] and nodes [1] in a campaign with {backend}")
            for backend in exp["backends"] if not capabilities(backend).mpi]


def spinnaker_problems(c: Campaign) -> list[ConfigProblem]:
    """The machine's SpiNNaker settings name one way to a board, or say to emulate."""
    spinnaker, f_machine = c.machine["spinnaker"], c.files["machine"]
    problems = []
    if "spinnaker" in c.experiment["backends"] and spinnaker["fallback"] != "emulate" \
            and not (spinnaker.get("machine_name") or spinnaker.get("spalloc_server")):
        problems.append(ConfigProblem(
            f_machine, "spinnaker.fallback", spinnaker.get("fallback"),
            "needs a board (spinnaker.machine_name) or a spalloc server (spinnaker.spalloc_server); "
            "without either, use fallback: emulate"))
    if spinnaker.get("machine_name") and spinnaker.get("spalloc_server"):
        problems.append(ConfigProblem(f_machine, "spinnaker.spalloc_server", spinnaker["spalloc_server"],
                                      "name either a board (machine_name) or a spalloc server, not both"))
    return problems


def mpi_problems(c: Campaign) -> list[ConfigProblem]:
    """Shapes with several ranks need NEST built with MPI and a launcher on the machine."""
    exp, f_exp = c.experiment, c.files["experiment"]
    multi_rank = _multi_rank(exp)
    problems = []
    for variant in c.variants:
        env = c.software[variant].get("nest", {}).get("environment", {})
        backend = "nest"
        if backend in exp["backends"] and multi_rank and env.get("kind") == "venv" \
                and env.get("name", backend) == backend:
            problems.append(ConfigProblem(
                c.software_file(variant), f"{backend}.environment.kind", "venv",
                f"runs with several MPI ranks (axes in {f_exp}) need {backend} built with MPI; the PyPI wheel in "
                ".venvs/nest has none: use kind 'venv' with name 'nest-mpi' (make nest-mpi), or a site build"))
    if "mpi" not in c.machine:
        for key in ("nodes", "tasks_per_node"):
            for i, v in enumerate(exp["axes"][key]):
                if v > 1:
                    problems.append(ConfigProblem(
                        f_exp, f"axes.{key}[{i}]", v,
                        f"more than one MPI rank per run needs an MPI launcher (key 'mpi') in {c.files['machine']}"))
    return problems


def step_problems(c: Campaign) -> list[ConfigProblem]:
    """The model's times are whole numbers of time steps."""
    model = c.model
    dt = model["dt_ms"]
    problems = []
    for key in ("t_sim_ms", "t_presim_ms"):
        steps = model[key] / dt
        if abs(steps - round(steps)) > 1e-6:
            problems.append(ConfigProblem(c.files["model"], key, model[key],
                                          f"must be a whole number of steps of dt_ms = {dt}"))
    return problems


def run_count_problems(c: Campaign) -> list[ConfigProblem]:
    """At most MAX_RUNS runs per campaign."""
    exp, model, f_model = c.experiment, c.model, c.files["model"]
    n_backend_variants = sum(len(c.variants_of(backend)) for backend in exp["backends"])
    n_runs = n_backend_variants * len(resource_shapes(exp)) * len(model["seeds"]) * exp["repetitions"]
    if n_runs <= MAX_RUNS:
        return []
    return [ConfigProblem(c.files["experiment"], "axes", exp["axes"],
                          f"with {len(model['seeds'])} seed(s) ({f_model}), {exp['repetitions']} repetition(s) "
                          f"and {n_backend_variants} backend(s) x software variant(s) this is {n_runs:,} runs; at most "
                          f"{MAX_RUNS:,} per campaign (split it)")]


def weak_scaling_problems(c: Campaign) -> list[ConfigProblem]:
    """A weak-scaling rule exactly when the experiment scales weakly."""
    exp, f_exp = c.experiment, c.files["experiment"]
    if exp["scaling"] == "weak" and "weak_scaling" not in exp:
        return [ConfigProblem(f_exp, "weak_scaling", None, "required when scaling is 'weak'")]
    if exp["scaling"] == "strong" and "weak_scaling" in exp:
        return [ConfigProblem(f_exp, "weak_scaling", exp["weak_scaling"], "only allowed when scaling is 'weak'")]
    return []


def shape_problems(c: Campaign) -> list[ConfigProblem]:
    """Per resource shape, the model at that shape's size: a valid n_scaling, memory and
    walltime that the machine can give each backend's run (spikescale.estimate), and (NEST)
    enough virtual processes for its connections."""
    # Imported here: the model package is not needed to read a config file.
    from spikescale.models.pd14 import derived

    exp, model = c.experiment, c.model
    f_exp = c.files["experiment"]
    problems = []
    for shape in resource_shapes(exp):
        nodes, tasks, threads = shape
        n_scaling, k_scaling = model_for_shape(exp, model, shape)
        where = f"resources nodes={nodes}, tasks_per_node={tasks}, threads_per_task={threads}"
        if not 0 < n_scaling <= 1:
            problems.append(ConfigProblem(f_exp, "weak_scaling.n_scaling_per_unit", exp["weak_scaling"]["n_scaling_per_unit"],
                                          f"gives n_scaling = {n_scaling:g} at {where}; n_scaling must lie in (0, 1]"))
            continue
        resources = {"nodes": nodes, "tasks_per_node": tasks, "threads_per_task": threads}
        run = {"n_scaling": n_scaling, "k_scaling": k_scaling, **{k: model[k] for k in (
            "drive", "thalamic_input", "t_presim_ms", "t_sim_ms", "dt_ms")}, **resources}
        problems += estimate_problems(c, run, resources)
        if "nest" in exp["backends"]:
            net = derived.derive(n_scaling, k_scaling, model["drive"], model["thalamic_input"])
            need = derived.min_virtual_processes_nest(net)
            vps = nodes * tasks * threads
            if vps < need:
                problems.append(ConfigProblem(
                    f_exp, "axes", resources,
                    f"NEST stores at most 134,217,726 connections per virtual process; PD14 at n_scaling={n_scaling:g}, "
                    f"k_scaling={k_scaling:g} has {net.connections_total():,} connections and needs >= {need} virtual "
                    f"processes (nodes x tasks x threads), this shape has {vps}"))
    return problems


def estimate_problems(c: Campaign, run: dict, resources: dict) -> list[ConfigProblem]:
    """Each backend's run at one shape against the machine's memory per node and time limit,
    from spikescale.estimate; a backend whose figure is not known is never refused."""
    from spikescale.estimate import estimate_run

    machine, f_exp, f_machine = c.machine, c.files["experiment"], c.files["machine"]
    size = f"PD14 at n_scaling={run['n_scaling']:g}, k_scaling={run['k_scaling']:g}"
    problems = []
    for backend in c.experiment["backends"]:
        variants = c.variants_of(backend)
        software = c.entry(backend, variants[0]) if variants else {}
        est = estimate_run({**run, "backend": backend}, machine, software)
        have_mb = machine["memory_per_node_mb"]
        if est.mem_mb_per_node is not None and est.mem_mb_per_node > have_mb:
            problems.append(ConfigProblem(
                f_exp, "axes", resources,
                f"{size} on {backend} needs about {est.mem_mb_per_node:,.0f} MB per node ({est.mem_basis}); "
                f"a node of machine {machine['name']!r} ({f_machine}) has {have_mb:,} MB (memory_per_node_mb)"))
        limit_s = machine["walltime_max_min"] * 60
        if est.walltime_s is not None and est.walltime_s > limit_s:
            problems.append(ConfigProblem(
                f_exp, "axes", resources,
                f"{size} on {backend} with {run['t_presim_ms']:g} + {run['t_sim_ms']:g} ms of model time takes about "
                f"{est.walltime_s / 60:,.0f} min ({est.time_basis}); machine {machine['name']!r} ({f_machine}) allows "
                f"walltime_max_min = {machine['walltime_max_min']}"))
    return problems


def validation_problems(c: Campaign) -> list[ConfigProblem]:
    """The validation runs and the NEST reference ensemble must be runnable here."""
    from spikescale.models.pd14 import derived

    if "validation" not in c.experiment:
        return []
    exp, model, machine = c.experiment, c.model, c.machine
    f_exp = c.files["experiment"]
    threads = exp["validation"]["threads_per_task"]
    problems = []
    if not c.variants_of("nest"):
        problems.append(ConfigProblem(" or ".join(c.software_file(v) for v in c.variants), "nest", None,
                                      f"validation (in {f_exp}) needs NEST for its reference ensemble: add a 'nest' entry"))
    if threads > machine["cores_per_node"] and not machine["allow_oversubscription"]:
        problems.append(ConfigProblem(f_exp, "validation.threads_per_task", threads,
                                      f"exceeds cores_per_node = {machine['cores_per_node']} of machine "
                                      f"{machine['name']!r} ({c.files['machine']})"))
    net = derived.derive(model["n_scaling"], model["k_scaling"], model["drive"], model["thalamic_input"])
    need = derived.min_virtual_processes_nest(net)
    if threads < need:
        problems.append(ConfigProblem(f_exp, "validation.threads_per_task", threads,
                                      f"the NEST reference of PD14 at n_scaling={model['n_scaling']:g} needs >= {need} "
                                      "virtual processes (one task, so threads)"))
    return problems


# sbatch options that the workflow sets from the run's resources: never from extra_sbatch,
# or two sources would disagree about what a run asked for.
MANAGED_SBATCH_OPTIONS = frozenset({
    "--nodes", "--ntasks", "--ntasks-per-node", "--cpus-per-task", "--mem", "--mem-per-cpu", "--time",
    "--partition", "--account", "--qos", "--constraint", "--array", "--job-name", "--output", "--error",
    "--chdir", "--wrap", "--parsable", "--comment", "--exclusive", "--export", "--clusters",
    # GPUs: a GPU run asks for the machine's gpus_per_node as --gres (resources.slurm_resources);
    # any other GPU request would differ from what the run checks it got
    "--gres", "--gpus", "--gpus-per-node", "--gpus-per-task", "--gpus-per-socket", "--ntasks-per-gpu",
    "--cpus-per-gpu", "--mem-per-gpu",
})


def managed_option_read_as(name: str) -> list[str]:
    """The workflow's own sbatch options that sbatch would read ``name`` as. sbatch (getopt_long)
    takes any unambiguous prefix of a long option: --part= is --partition=, --outp= is
    --output=. A prefix of several options is refused by sbatch itself and here too."""
    return sorted(option for option in MANAGED_SBATCH_OPTIONS if option.startswith(name) and len(name) > 2)


def machine_problems(machine: dict, f_machine: str) -> list[ConfigProblem]:
    problems = []
    if machine["executor"] == "local":
        if machine["nodes_max"] > 1:
            problems.append(ConfigProblem(f_machine, "nodes_max", machine["nodes_max"],
                                          "executor 'local' runs on this machine only: nodes_max must be 1"))
        if machine.get("mpi", {}).get("launcher") == "srun":
            problems.append(ConfigProblem(f_machine, "mpi.launcher", "srun", "srun needs executor 'slurm'; use mpirun"))
    problems += pinning_problems(machine, f_machine)
    for i, option in enumerate(machine.get("slurm", {}).get("extra_sbatch", [])):
        name = option.split("=", 1)[0]
        read_as = managed_option_read_as(name)
        if read_as:
            as_what = f"{name}" if read_as == [name] else f"{name} (sbatch reads it as {' or '.join(read_as)})"
            problems.append(ConfigProblem(
                f_machine, f"slurm.extra_sbatch[{i}]", option,
                f"{as_what} is set by the workflow from each run's resources (or by the machine's own keys: "
                "partition, account, qos, constraint, exclusive, gpus_per_node, gpu_type); remove it here"))
    if "gpu_type" in machine and not machine.get("gpus_per_node"):
        problems.append(ConfigProblem(f_machine, "gpu_type", machine["gpu_type"],
                                      "names the type of the machine's GPUs: set gpus_per_node (at least 1) too"))
    return problems + outlet_problems(machine, f_machine)


def outlet_problems(machine: dict, f_machine: str) -> list[ConfigProblem]:
    """energy.outlet (docs/energy.md): a source that says something, and the watts of the
    idle nodes it says the job holds."""
    outlet = (machine.get("energy") or {}).get("outlet")
    if outlet is None:
        return []
    problems = []
    if not str(outlet.get("source", "")).strip():
        problems.append(ConfigProblem(f_machine, "energy.outlet.source", outlet.get("source"),
                                      "must say where the numbers come from (vendor sheet, facility report, date)"))
    if outlet.get("idle_nodes_held") and "idle_node_w" not in outlet:
        problems.append(ConfigProblem(
            f_machine, "energy.outlet.idle_node_w", None,
            f"missing: energy.outlet.idle_nodes_held is {outlet['idle_nodes_held']}; declare the watts one idle "
            "held node draws at its outlet (0 or more)"))
    return problems


def pinning_problems(machine: dict, f_machine: str) -> list[ConfigProblem]:
    """A launcher binding that no launcher of this machine would apply, or that is given twice."""
    pinning, mpi = machine.get("pinning", {}), machine.get("mpi", {})
    problems = []
    if "srun_cpu_bind" in pinning and machine["executor"] != "slurm":
        problems.append(ConfigProblem(f_machine, "pinning.srun_cpu_bind", pinning["srun_cpu_bind"],
                                      "srun only starts runs on a SLURM machine (executor 'slurm'); remove it, "
                                      "or bind the threads with omp_proc_bind and omp_places"))
    if "mpirun_bind_to" in pinning:
        if mpi.get("launcher") != "mpirun":
            problems.append(ConfigProblem(f_machine, "pinning.mpirun_bind_to", pinning["mpirun_bind_to"],
                                          "applies to runs started by mpirun: set mpi.launcher: mpirun, or remove it"))
        if any(str(a).split("=", 1)[0] == "--bind-to" for a in mpi.get("mpirun_args", [])):
            problems.append(ConfigProblem(f_machine, "mpi.mpirun_args", " ".join(mpi["mpirun_args"]),
                                          "--bind-to is set by pinning.mpirun_bind_to: remove it from mpirun_args"))
    return problems


# Backends that can run on a GPU: only their software entries may say gpu: true.
GPU_BACKENDS = ("brian2genn", "genn")


def gpu_problems(c: Campaign) -> list[ConfigProblem]:
    """gpu: true only for backends that run on GPUs, and only on a machine that has GPUs."""
    problems = []
    for variant in c.variants:
        f_soft = c.software_file(variant)
        for backend, entry in c.software[variant].items():
            if not entry.get("gpu"):
                # On SLURM a job gets only the GPUs it asks for: a genn run told to use CUDA
                # without gpu: true would ask for none and fail at set-up on a compute node.
                wants_cuda = (entry.get("pygenn") or {}).get("backend") == "cuda"
                if wants_cuda and backend in c.experiment["backends"] and c.machine["executor"] == "slurm":
                    problems.append(ConfigProblem(
                        f_soft, f"{backend}.pygenn.backend", "cuda",
                        f"runs on SLURM machine {c.machine['name']!r} get only the GPUs they ask for: add "
                        f"'gpu: true' to the {backend} entry (and gpus_per_node to {c.files['machine']}), or use "
                        "single_threaded_cpu"))
                continue
            if backend not in GPU_BACKENDS:
                problems.append(ConfigProblem(f_soft, f"{backend}.gpu", True,
                                              f"only {' and '.join(GPU_BACKENDS)} run on GPUs; remove it here"))
            elif backend in c.experiment["backends"] and not c.machine.get("gpus_per_node"):
                problems.append(ConfigProblem(
                    c.files["machine"], "gpus_per_node", c.machine.get("gpus_per_node", 0),
                    f"{backend} in {f_soft} has gpu: true, but machine {c.machine['name']!r} has no GPUs: give its "
                    "GPUs per node here (at least 1), or run that variant elsewhere"))
    return problems
