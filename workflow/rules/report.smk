# The summary (results/summary.md, and as an HTML table in the report) and the report's landing
# page (results/report/description.rst: what this run did), for the sweeps and, when the config
# has a `reproductions:` section, the paper reproductions. Logic: attention_dynamics.report.

SUMMARY_INPUTS = {
    "runs": f"{R}/tables/runs.parquet",
    "lifetimes": f"{R}/tables/lifetimes.parquet",
    "trajectories": f"{R}/tables/trajectories.parquet",
    "fits": f"{R}/tables/fits.parquet",
}
if REPRO_ON:
    SUMMARY_INPUTS.update(
        staircase=f"{R}/tables/staircase_authors.parquet",
        emergence=f"{R}/tables/emergence.parquet",
        phase=f"{R}/tables/phase_diagram.parquet",
        meanfield=f"{R}/tables/meanfield.parquet",
        meanfield_emergence=f"{R}/tables/meanfield_emergence.parquet",
        emergence_growth=f"{R}/tables/emergence_growth.parquet",
    )
TARGETS += [f"{R}/summary.md", f"{R}/summary.html", f"{R}/report/description.rst"]


rule summary:
    input:
        **SUMMARY_INPUTS,
    output:
        md=f"{R}/summary.md",
        html=report(
            f"{R}/summary.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "claims against measurements"},
        ),
        description=f"{R}/report/description.rst",
    log:
        f"{R}/logs/summary.log",
    benchmark:
        f"{R}/benchmarks/summary.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        reproductions=REPRO_JSON if REPRO_ON else "",
        config_hash=PLAN.hash,
        descriptions={s: PLAN.config["sweeps"][s]["description"] for s in PLAN.sweeps},  # on the landing page
    script:
        "../scripts/summary.py"
