"""attention-dynamics sweep pipeline (GitHub issue 3).

    snakemake --cores 2                                  # default sweep (config/config.yaml)
    snakemake --cores 2 --configfile config/test.yaml    # another config *replaces* the default
    snakemake --report report.html                       # HTML report: what the run did, summary, figures

The config is checked at start-up (attention_dynamics.pipeline.sweep, then the JSON schema) and a
bad config stops before any job with a message naming the key. Logic lives in the
package; rules only call it. Keys: config/README.md; tables: docs/tables.md.
"""

import os
import sys

from snakemake.logging import logger
from snakemake.utils import min_version, validate

# The driver imports this checkout's package, as its jobs do (PYTHONPATH below): never another
# installed copy, whose code fingerprint would differ from the jobs' and make them refuse the cells.
_SRC = os.path.join(workflow.basedir, "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

from attention_dynamics.pipeline import integrity as adintegrity
from attention_dynamics.pipeline import io as adio
from attention_dynamics.pipeline import locks as adlocks
from attention_dynamics.pipeline.config import config_yaml
from attention_dynamics.pipeline import slurm as adslurm
from attention_dynamics.pipeline import sweep as sw

min_version("9.0")


# The package's source is on PYTHONPATH for every job, so that jobs run in the conda
# environment of workflow/envs/ (--use-conda) import this checkout's code too; envvars
# passes it on to jobs on other machines (SLURM).
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)


envvars:
    "PATH",
    "PYTHONPATH",


# A --configfile on the command line replaces the default config (instead of being
# deep-merged into it, which would keep the default sweeps).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Restart after a kill (SIGKILL, OOM, lost session): a lock whose every owner is provably
# gone is removed here, so the plain `snakemake --cores 2` resumes; the profile's
# rerun-incomplete re-runs the jobs that were cut off, finished cells are kept. Each run
# records itself before Snakemake takes its lock and removes only its own lock files
# (attention_dynamics.pipeline.locks; jobs spawned by an executor do not touch locks).
_MAIN = workflow.exec_mode.name == "DEFAULT"
if _MAIN:
    adlocks.keep_other_runs_locks()
    for _cleared in adlocks.clear_stale_locks(".snakemake"):
        logger.warning(_cleared)
    # SLURM jobs a dead driver left queued or running here: wait for them (AD_PREVIOUS_JOBS=cancel:
    # cancel them) before the DAG is built, so that no cell is submitted twice (docs/slurm.md)
    adslurm.handle_previous_jobs(os.getcwd(), log=logger.warning)

# our checks + grid expansion; the horizon pre-flight only in the main process, not in every job
PLAN = sw.load_plan(
    config,
    configfiles=workflow.configfiles,
    horizons=workflow.exec_mode.name == "DEFAULT",
)
validate(config, "workflow/schemas/config.schema.yaml", set_default=False)
for _warning in PLAN.warnings:
    logger.warning(f"config warning: {_warning}")
logger.info(PLAN.summary())

# Provenance of every table (attention_dynamics.pipeline.io.provenance): the config hash and the
# config text reach every job through the environment, like PYTHONPATH.
os.environ[adio.ENV_CONFIG_HASH] = PLAN.hash
os.environ[adio.ENV_CONFIG_TEXT] = config_yaml(config)


envvars:
    adio.ENV_CONFIG_HASH,
    adio.ENV_CONFIG_TEXT,


R = PLAN.results  # results folder
if _MAIN:
    adlocks.register_run(R, ".snakemake")
    _others = adlocks.runs_writing(R, ".snakemake")
    for _other in _others:
        logger.warning(
            f"another Snakemake run is writing to {R} ({adlocks.describe(_other)}): this run will "
            "stop before any job; wait until that run has finished (do not use --unlock)"
        )
    # every table is checked against its checksum; a damaged one is deleted, so this run recomputes
    # it (attention_dynamics.pipeline.integrity; skipped while another run writes there)
    for _damaged in [] if _others else adintegrity.remove_damaged(R):
        logger.warning(_damaged)
# Jobs call `python -m attention_dynamics...`: make that the interpreter running snakemake
# (it has the package), also when the environment was not activated.
PY = sys.executable
os.environ["PATH"] = os.path.dirname(PY) + os.pathsep + os.environ.get("PATH", "")
ENV = "envs/attention-dynamics.yaml"  # conda environment of every rule (relative to workflow/)
PLOT_KINDS = ["staircase", "clusters", "times", "lifetimes"]

# Final targets of `rule all`. Rule files may append their own (TARGETS += [...]).
TARGETS = [
    *expand("{r}/tables/{t}.parquet", r=R, t=[*sw.TABLE_NAMES, "fits"]),
    *expand(
        "{r}/plots/{sweep}/{kind}.{ext}",
        r=R,
        sweep=PLAN.sweeps,
        kind=PLOT_KINDS,
        ext=["png", "pdf"],
    ),
]

# Rule files (workflow/rules/), in order. Add new ones here.
RULE_FILES = [
    "common.smk",
    "simulate.smk",
    "aggregate.smk",
    "plots.smk",
    "reproductions.smk",
    "meanfield.smk",
    "report.smk",
]


for _rule_file in RULE_FILES:

    include: f"workflow/rules/{_rule_file}"


# The report's landing page: what this run did, written by rule summary (workflow/rules/report.smk);
# before the first run, a page that says so.
_LANDING = os.path.abspath(f"{R}/report/description.rst")


report: _LANDING if os.path.exists(_LANDING) else "workflow/report/workflow.rst"


onstart:
    # runs once the lock is taken, before any job (never in a dry run): stop if another live run
    # writes to the same results folder, then remove temporary files of killed writers
    adlocks.claim_results(R, ".snakemake")
    for _tmp in adio.remove_stale_temps(R):
        logger.info(f"removed stale temporary file {_tmp}")
    # SIGTERM cancels the jobs like Ctrl-C; on SLURM: sbatch --test-only of every request first
    adslurm.on_start(workflow, log=logger.info)


onsuccess:
    adslurm.on_end(workflow, log, ok=True, out=logger.info)


onerror:
    adslurm.on_end(workflow, log, ok=False, out=logger.error)


rule all:
    default_target: True
    input:
        TARGETS,
