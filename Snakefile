"""attention-dynamics sweep pipeline (GitHub issue 3).

    snakemake --cores 2                                  # default sweep (config/config.yaml)
    snakemake --cores 2 --configfile config/test.yaml    # another config *replaces* the default
    snakemake --report report.html                       # HTML report with every plot

The config is checked at start-up (attention_dynamics.pipeline.sweep, then the JSON schema) and a
bad config stops before any job with a message naming the key. Logic lives in the
package; rules only call it. Keys: config/README.md; tables: docs/tables.md.
"""
import os
import sys

from snakemake.logging import logger
from snakemake.utils import min_version, validate

from attention_dynamics.pipeline import io as adio
from attention_dynamics.pipeline import sweep as sw

min_version("9.0")


# The package's source is on PYTHONPATH for every job, so that jobs run in the conda
# environment of workflow/envs/ (--use-conda) import this checkout's code too; envvars
# passes it on to jobs on other machines (SLURM).
_SRC = os.path.join(workflow.basedir, "src")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)


envvars:
    "PATH",
    "PYTHONPATH",



# A --configfile on the command line replaces the default config (instead of being
# deep-merged into it, which would keep the default sweeps).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Restart after a kill (SIGKILL, OOM, lost session): a lock whose owner process is provably
# gone is removed here, so the plain `snakemake --cores 2` resumes; the profile's
# rerun-incomplete re-runs the jobs that were cut off, finished cells are kept
# (attention_dynamics.pipeline.io.clear_stale_lock; jobs spawned by an executor do not touch locks).
if workflow.exec_mode.name == "DEFAULT":
    _cleared = adio.clear_stale_lock(".snakemake")
    if _cleared:
        logger.warning(_cleared)

PLAN = sw.load_plan(config, configfiles=workflow.configfiles)  # our checks + grid expansion
validate(config, "workflow/schemas/config.schema.yaml", set_default=False)
for _warning in PLAN.warnings:
    logger.warning(f"config warning: {_warning}")
logger.info(PLAN.summary())

R = PLAN.results  # results folder
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
]


for _rule_file in RULE_FILES:

    include: f"workflow/rules/{_rule_file}"


onstart:
    # runs once the lock is taken: record its owner, remove temporary files of killed writers
    adio.record_lock_owner(".snakemake")
    for _tmp in adio.remove_stale_temps(R):
        logger.info(f"removed stale temporary file {_tmp}")


rule all:
    default_target: True
    input:
        TARGETS,
