# All figures of one sweep in one job (one interpreter start for the 8 files), PNG + PDF,
# each in the HTML report with its caption (workflow/report/<figure>.rst). Drawn by
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
            category="{sweep}",
            subcategory="Energy staircase",
            labels={"figure": "staircase", "format": "png"},
        ),
        staircase_pdf=report(
            f"{R}/plots/{{sweep}}/staircase.pdf",
            caption="../report/staircase.rst",
            category="{sweep}",
            subcategory="Energy staircase",
            labels={"figure": "staircase", "format": "pdf"},
        ),
        clusters_png=report(
            f"{R}/plots/{{sweep}}/clusters.png",
            caption="../report/clusters.rst",
            category="{sweep}",
            subcategory="Cluster count",
            labels={"figure": "clusters", "format": "png"},
        ),
        clusters_pdf=report(
            f"{R}/plots/{{sweep}}/clusters.pdf",
            caption="../report/clusters.rst",
            category="{sweep}",
            subcategory="Cluster count",
            labels={"figure": "clusters", "format": "pdf"},
        ),
        times_png=report(
            f"{R}/plots/{{sweep}}/times.png",
            caption="../report/times.rst",
            category="{sweep}",
            subcategory="Escape and merge times",
            labels={"figure": "times", "format": "png"},
        ),
        times_pdf=report(
            f"{R}/plots/{{sweep}}/times.pdf",
            caption="../report/times.rst",
            category="{sweep}",
            subcategory="Escape and merge times",
            labels={"figure": "times", "format": "pdf"},
        ),
        lifetimes_png=report(
            f"{R}/plots/{{sweep}}/lifetimes.png",
            caption="../report/lifetimes.rst",
            category="{sweep}",
            subcategory="Plateau lifetimes",
            labels={"figure": "lifetimes", "format": "png"},
        ),
        lifetimes_pdf=report(
            f"{R}/plots/{{sweep}}/lifetimes.pdf",
            caption="../report/lifetimes.rst",
            category="{sweep}",
            subcategory="Plateau lifetimes",
            labels={"figure": "lifetimes", "format": "pdf"},
        ),
    params:
        tables=lambda w, input: os.path.dirname(input.runs),
        max_panels=PLAN.config["plots"]["max_panels"],
        n_betas=PLAN.config["plots"]["n_betas"],
        outdir=lambda w: f"{R}/plots/{w.sweep}",
    conda:
        f"../{ENV}"
    log:
        f"{R}/logs/plots/{{sweep}}.log",
    benchmark:
        f"{R}/benchmarks/plots/{{sweep}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "MPLBACKEND=Agg python -m attention_dynamics.analysis.plots all --sweep {wildcards.sweep}"
        " --tables {params.tables:q} --outdir {params.outdir:q} --formats png pdf"
        " --max-panels {params.max_panels} --n-betas {params.n_betas} > {log:q} 2>&1"
