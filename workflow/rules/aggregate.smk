# Concatenate the per-cell tables into results/tables/, then fit the scaling laws.


rule aggregate:
    input:
        runs=PLAN.cell_files("runs"),
        events=PLAN.cell_files("events"),
        lifetimes=PLAN.cell_files("lifetimes"),
        trajectories=PLAN.cell_files("trajectories"),
    output:
        runs=f"{R}/tables/runs.parquet",
        events=f"{R}/tables/events.parquet",
        lifetimes=f"{R}/tables/lifetimes.parquet",
        trajectories=f"{R}/tables/trajectories.parquet",
    log:
        f"{R}/logs/aggregate.log",
    benchmark:
        f"{R}/benchmarks/aggregate.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config_hash=PLAN.hash,
    script:
        "../scripts/aggregate.py"


rule fits:
    input:
        runs=f"{R}/tables/runs.parquet",
    output:
        fits=f"{R}/tables/fits.parquet",
    log:
        f"{R}/logs/fits.log",
    benchmark:
        f"{R}/benchmarks/fits.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        n_boot=PLAN.config["fits"]["n_boot"],
        ci=PLAN.config["fits"]["ci"],
        seed=PLAN.config["fits"]["seed"],
        base_seed=PLAN.config["base_seed"],
    shell:
        "python -m attention_dynamics.analysis.fits --runs {input.runs:q} --out {output.fits:q}"
        " --n-boot {params.n_boot} --ci {params.ci} --seed {params.seed}"
        " --base-seed {params.base_seed} > {log:q} 2>&1"
