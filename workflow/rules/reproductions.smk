# Paper reproductions (GitHub issue 5): GKPR24's staircase, BPA24's emergence of l* clusters,
# GLPR23's (β, t) phase diagram. They run only when the config has a `reproductions:` section
# (config/config.yaml has one; `reproductions: {}` runs all three with their defaults, checked
# and filled in by attention_dynamics.reproductions.reproductions_config). Logic lives in the package.

import json as _json
import os

from attention_dynamics.reproductions import emergence_cells as _emergence_cells
from attention_dynamics.reproductions import job_config as _job_config
from attention_dynamics.reproductions import (
    reproductions_config as _reproductions_config,
)
from attention_dynamics.report import reproduction_facts as _reproduction_facts

REPRO_ON = "reproductions" in config  # a config without the section schedules no reproduction job
REPRO = _reproductions_config(config.get("reproductions"))
REPRO_FACTS = _reproduction_facts(REPRO)  # the settings each figure's caption states
REPRO_JSON = _json.dumps(REPRO, sort_keys=True)
EMERGENCE_CELLS = _emergence_cells(config.get("reproductions"))
EMERGENCE_FILES = [f"{R}/reproductions/emergence/{c['path']}.parquet" for c in EMERGENCE_CELLS]
REPRO_TABLES = [f"{R}/tables/{t}.parquet" for t in ("staircase_authors", "emergence", "phase_diagram")]
REPRO_PLOTS = [
    f"{R}/plots/reproductions/{f}.{ext}"
    for f in ("staircase_authors", "emergence", "phase_diagram")
    for ext in ("png", "pdf")
]
REPRO_SEEDS = int(REPRO["emergence"]["seeds"])
if REPRO_ON:
    TARGETS += [*REPRO_TABLES, *REPRO_PLOTS]  # picked up by rule all in the Snakefile


wildcard_constraints:
    rd=r"\d+",
    rn=r"\d+",
    rbeta=r"[0-9][0-9.e+-]*",


rule staircase_authors:
    output:
        steps=f"{R}/tables/staircase_authors.parquet",
        curves=f"{R}/tables/staircase_authors_curves.parquet",
        png=_repro_report("staircase_authors", "staircase_authors.rst", "GKPR24 staircase"),
        pdf=f"{R}/plots/reproductions/staircase_authors.pdf",
    log:
        f"{R}/logs/reproductions/staircase_authors.log",
    benchmark:
        f"{R}/benchmarks/reproductions/staircase_authors.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cfg=_job_config(REPRO, "staircase"),
        facts=lambda w: REPRO_FACTS["staircase"],
        png=_staged(f"{R}/plots/reproductions/staircase_authors.png"),
        pdf=_staged(f"{R}/plots/reproductions/staircase_authors.pdf"),
    shell:
        "MPLBACKEND=Agg python -m attention_dynamics.reproductions --config {params.cfg:q}"
        " staircase --steps {output.steps:q} --curves {output.curves:q}"
        " --plot {params.png:q} {params.pdf:q} > {log:q} 2>&1"
        " && mv -f {params.png:q} {output.png:q} && mv -f {params.pdf:q} {output.pdf:q}"


rule emergence_cell:
    output:
        table=f"{R}/reproductions/emergence/d{{rd}}/n{{rn}}/beta{{rbeta}}.parquet",
        spectra=f"{R}/reproductions/emergence_spectra/d{{rd}}/n{{rn}}/beta{{rbeta}}.parquet",
    log:
        f"{R}/logs/reproductions/emergence/d{{rd}}/n{{rn}}/beta{{rbeta}}.log",
    benchmark:
        f"{R}/benchmarks/reproductions/emergence/d{{rd}}/n{{rn}}/beta{{rbeta}}.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        # d = 2 (Fourier-mode field, O(n)): ≈ 0.1–0.5 s per seed at n = 2000, 6–9 s at n = 2·10⁵;
        # d ≥ 3 (direct field, O(n²) with an n × n Gram matrix for the clusters): ≈ 7 s CPU at n = 2000
        mem_mb=lambda w: 1500 + (int(w.rn) // 1000 if int(w.rd) == 2 else 24 * int(w.rn) ** 2 // 10**6),
        runtime=lambda w: 5
        + REPRO_SEEDS * int(2 + 5e-5 * int(w.rn) if int(w.rd) == 2 else 8 * (int(w.rn) / 2000) ** 2) // 60,
    params:
        cfg=lambda w: _job_config(REPRO, "emergence", d=[int(w.rd)], n=[int(w.rn)], betas=[float(w.rbeta)]),
        base_seed=PLAN.config["base_seed"],
    shell:
        "python -m attention_dynamics.reproductions --config {params.cfg:q}"
        " emergence --d {wildcards.rd} --n {wildcards.rn} --beta {wildcards.rbeta} --base-seed {params.base_seed}"
        " --out {output.table:q} --spectra {output.spectra:q} > {log:q} 2>&1"


rule emergence:
    input:
        EMERGENCE_FILES,
    output:
        table=f"{R}/tables/emergence.parquet",
        png=_repro_report("emergence", "emergence.rst", "BPA24 emergence"),
        pdf=f"{R}/plots/reproductions/emergence.pdf",
    log:
        f"{R}/logs/reproductions/emergence.log",
    benchmark:
        f"{R}/benchmarks/reproductions/emergence.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cfg=_job_config(REPRO, "emergence"),
        facts=lambda w: REPRO_FACTS["emergence"],
        png=_staged(f"{R}/plots/reproductions/emergence.png"),
        pdf=_staged(f"{R}/plots/reproductions/emergence.pdf"),
    shell:
        "MPLBACKEND=Agg python -m attention_dynamics.reproductions --config {params.cfg:q}"
        " emergence-aggregate --inputs {input:q} --out {output.table:q}"
        " --plot {params.png:q} {params.pdf:q} > {log:q} 2>&1"
        " && mv -f {params.png:q} {output.png:q} && mv -f {params.pdf:q} {output.pdf:q}"


rule phase_diagram:
    output:
        table=f"{R}/tables/phase_diagram.parquet",
        png=_repro_report("phase_diagram", "phase_diagram.rst", "GLPR23 phase diagram"),
        pdf=f"{R}/plots/reproductions/phase_diagram.pdf",
    log:
        f"{R}/logs/reproductions/phase_diagram.log",
    benchmark:
        f"{R}/benchmarks/reproductions/phase_diagram.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=1000,
        # ≈ 0.1 s per (β, system) at n = 32
        runtime=lambda w: 5 + len(REPRO["phase_diagram"]["betas"]) * int(REPRO["phase_diagram"]["n_systems"]) // 300,
    params:
        cfg=_job_config(REPRO, "phase_diagram"),
        base_seed=PLAN.config["base_seed"],
        facts=lambda w: REPRO_FACTS["phase_diagram"],
        png=_staged(f"{R}/plots/reproductions/phase_diagram.png"),
        pdf=_staged(f"{R}/plots/reproductions/phase_diagram.pdf"),
    shell:
        "MPLBACKEND=Agg python -m attention_dynamics.reproductions --config {params.cfg:q}"
        " phase --base-seed {params.base_seed} --out {output.table:q}"
        " --plot {params.png:q} {params.pdf:q} > {log:q} 2>&1"
        " && mv -f {params.png:q} {output.png:q} && mv -f {params.pdf:q} {output.pdf:q}"
