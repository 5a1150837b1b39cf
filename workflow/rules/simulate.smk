# One job per grid cell: every seed of the cell in one process (docs/science.md §7: per-job
# overhead), writing runs/events/lifetimes/trajectories.parquet atomically.


wildcard_constraints:
    sweep=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    cell=r"(?:[a-z_]+~[^/]+/)*beta~[^/]+",


rule simulate_cell:
    output:
        runs=f"{R}/cells/{{sweep}}/{{cell}}/runs.parquet",
        events=f"{R}/cells/{{sweep}}/{{cell}}/events.parquet",
        lifetimes=f"{R}/cells/{{sweep}}/{{cell}}/lifetimes.parquet",
        trajectories=f"{R}/cells/{{sweep}}/{{cell}}/trajectories.parquet",
    log:
        f"{R}/logs/cells/{{sweep}}/{{cell}}.log",
    benchmark:
        f"{R}/benchmarks/cells/{{sweep}}/{{cell}}.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=lambda w: PLAN.index[w.sweep, w.cell].runtime_min,
    params:
        cell=lambda w: PLAN.index[w.sweep, w.cell].json,
        seeds=lambda w: PLAN.index[w.sweep, w.cell].seeds,
        base_seed=PLAN.config["base_seed"],
        outdir=lambda w: f"{R}/cells/{w.sweep}/{w.cell}",
    shell:
        "python -m attention_dynamics run-cell --cell {params.cell:q} --seeds {params.seeds}"
        " --base-seed {params.base_seed} --out {params.outdir:q} > {log:q} 2>&1"
