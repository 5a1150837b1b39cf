# All figures of one sweep in one job (one interpreter start for the 8 files), PNG + PDF.
# The PNGs are in the HTML report with their captions (workflow/report/<figure>.rst, which state
# the sweep's settings from params.facts); the PDFs stay files for papers. Drawn by
# attention_dynamics.analysis.plots with MPLBACKEND=Agg (no display needed). A fixed set of
# files whatever the sweep's size: the PDF holds every page of plots.max_panels panels, the
# PNG the first page (its title says which groups it shows).


rule plots:
    input:
        runs=f"{R}/tables/runs.parquet",
        trajectories=f"{R}/tables/trajectories.parquet",
        lifetimes=f"{R}/tables/lifetimes.parquet",
        fits=f"{R}/tables/fits.parquet",
    output:
        staircase_png=report(
            f"{R}/plots/{{sweep}}/staircase.png",
            caption="../report/staircase.rst",
            category="Sweep {sweep}",
            subcategory="Energy staircase",
            labels={"figure": "staircase"},
        ),
        staircase_pdf=f"{R}/plots/{{sweep}}/staircase.pdf",
        clusters_png=report(
            f"{R}/plots/{{sweep}}/clusters.png",
            caption="../report/clusters.rst",
            category="Sweep {sweep}",
            subcategory="Cluster count",
            labels={"figure": "clusters"},
        ),
        clusters_pdf=f"{R}/plots/{{sweep}}/clusters.pdf",
        times_png=report(
            f"{R}/plots/{{sweep}}/times.png",
            caption="../report/times.rst",
            category="Sweep {sweep}",
            subcategory="Escape and merge times",
            labels={"figure": "times"},
        ),
        times_pdf=f"{R}/plots/{{sweep}}/times.pdf",
        lifetimes_png=report(
            f"{R}/plots/{{sweep}}/lifetimes.png",
            caption="../report/lifetimes.rst",
            category="Sweep {sweep}",
            subcategory="Plateau lifetimes",
            labels={"figure": "lifetimes"},
        ),
        lifetimes_pdf=f"{R}/plots/{{sweep}}/lifetimes.pdf",
    log:
        f"{R}/logs/plots/{{sweep}}.log",
    benchmark:
        f"{R}/benchmarks/plots/{{sweep}}.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        tables=lambda w, input: os.path.dirname(input.runs),
        max_panels=PLAN.config["plots"]["max_panels"],
        n_betas=PLAN.config["plots"]["n_betas"],
        outdir=lambda w: f"{R}/plots/{w.sweep}",
        facts=lambda w: _sweep_facts(PLAN.config["sweeps"][w.sweep]),
    shell:
        "MPLBACKEND=Agg python -m attention_dynamics.analysis.plots all --sweep {wildcards.sweep}"
        " --tables {params.tables:q} --outdir {params.outdir:q} --formats png pdf"
        " --max-panels {params.max_panels} --n-betas {params.n_betas} > {log:q} 2>&1"
