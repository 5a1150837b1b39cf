# BPA24 with the mean-field PDE (issue 13): Fig. 4 (uniform + white noise -> an l*-periodic state),
# peaks and dominant degrees against l*(beta) in d = 2 and 3, and the solver's growth rates; and the
# finite-n targets with particles (growth rates of the ensemble-averaged degree power, dominant
# degree against the finite-n prediction, count at formation). Settings: reproductions.meanfield
# and reproductions.emergence (attention_dynamics.reproductions.reproductions_config).

from attention_dynamics.reproductions import meanfield_cells as _meanfield_cells
from attention_dynamics.reproductions import meanfield_job_config as _meanfield_job_config

MEANFIELD_CELLS = _meanfield_cells(config.get("reproductions"))
MEANFIELD_NOISE = [f"{R}/reproductions/meanfield/noise/{c['path']}.parquet" for c in MEANFIELD_CELLS]
MEANFIELD_PROFILES = [f"{R}/reproductions/meanfield/profiles/{c['path']}.parquet" for c in MEANFIELD_CELLS]
MEANFIELD_RATES = [f"{R}/reproductions/meanfield/rates/d{d}.parquet" for d in REPRO["meanfield"]["rate_d"]]
EMERGENCE_SPECTRA = [f"{R}/reproductions/emergence_spectra/{c['path']}.parquet" for c in EMERGENCE_CELLS]
MEANFIELD_TABLES = [
    f"{R}/tables/{t}.parquet"
    for t in (
        "meanfield",
        "meanfield_emergence",
        "meanfield_profiles",
        "emergence_spectra",
        "emergence_growth",
    )
]
MEANFIELD_PLOTS = [
    f"{R}/plots/reproductions/{f}.{ext}"
    for f in (
        "meanfield_heatmap",
        "meanfield_peaks",
        "growth_rates",
        "emergence_selection",
    )
    for ext in ("png", "pdf")
]
if REPRO_ON:
    TARGETS += [*MEANFIELD_TABLES, *MEANFIELD_PLOTS]


rule meanfield_rates:
    output:
        f"{R}/reproductions/meanfield/rates/d{{rd}}.parquet",
    log:
        f"{R}/logs/reproductions/meanfield/rates_d{{rd}}.log",
    benchmark:
        f"{R}/benchmarks/reproductions/meanfield/rates_d{{rd}}.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        # single-mode starts: ≈ 0.005–0.03 s per (β, l, model) in d = 2 and 3
        mem_mb=1000,
        runtime=10,
    params:
        cfg=lambda w: _meanfield_job_config(REPRO, "rates", rate_d=[int(w.rd)]),
    shell:
        "python -m attention_dynamics.reproductions --config {params.cfg:q}"
        " meanfield-rates --d {wildcards.rd} --out {output:q} > {log:q} 2>&1"


rule meanfield_noise:
    output:
        noise=f"{R}/reproductions/meanfield/noise/d{{rd}}/beta{{rbeta}}.parquet",
        profiles=f"{R}/reproductions/meanfield/profiles/d{{rd}}/beta{{rbeta}}.parquet",
    log:
        f"{R}/logs/reproductions/meanfield/noise/d{{rd}}/beta{{rbeta}}.log",
    benchmark:
        f"{R}/benchmarks/reproductions/meanfield/noise/d{{rd}}/beta{{rbeta}}.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        # per seed: d = 2 (L = 512) 0.03–0.1 s; d = 3 (default L, tail 1e-3) 0.2–1.5 s
        mem_mb=1500,
        runtime=lambda w: 5 + int(REPRO["meanfield"]["seeds"]) * (2 if int(w.rd) == 3 else 1) // 30,
    params:
        # the job's own d and β (a new β or another d does not re-run the others)
        cfg=lambda w: _meanfield_job_config(
            REPRO,
            "noise",
            d=[int(w.rd)],
            betas=[float(w.rbeta)],
            profile_betas=[b for b in REPRO["meanfield"]["profile_betas"] if b == float(w.rbeta)],
        ),
        base_seed=PLAN.config["base_seed"],
    shell:
        "python -m attention_dynamics.reproductions --config {params.cfg:q}"
        " meanfield-noise --d {wildcards.rd} --beta {wildcards.rbeta} --base-seed {params.base_seed}"
        " --out {output.noise:q} --profiles {output.profiles:q} > {log:q} 2>&1"


rule meanfield:
    input:
        rates=MEANFIELD_RATES,
        noise=MEANFIELD_NOISE,
        profiles=MEANFIELD_PROFILES,
    output:
        rates=f"{R}/tables/meanfield.parquet",
        emergence=f"{R}/tables/meanfield_emergence.parquet",
        profiles=f"{R}/tables/meanfield_profiles.parquet",
        heat_png=_repro_report("meanfield_heatmap", "meanfield_heatmap.rst", "BPA24 mean field"),
        heat_pdf=f"{R}/plots/reproductions/meanfield_heatmap.pdf",
        peaks_png=_repro_report("meanfield_peaks", "meanfield_peaks.rst", "BPA24 mean field"),
        peaks_pdf=f"{R}/plots/reproductions/meanfield_peaks.pdf",
    log:
        f"{R}/logs/reproductions/meanfield.log",
    benchmark:
        f"{R}/benchmarks/reproductions/meanfield.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cfg=_job_config(REPRO, "meanfield"),
        facts=lambda w: REPRO_FACTS["meanfield"],
        heat_png=_staged(f"{R}/plots/reproductions/meanfield_heatmap.png"),
        heat_pdf=_staged(f"{R}/plots/reproductions/meanfield_heatmap.pdf"),
        peaks_png=_staged(f"{R}/plots/reproductions/meanfield_peaks.png"),
        peaks_pdf=_staged(f"{R}/plots/reproductions/meanfield_peaks.pdf"),
    shell:
        "MPLBACKEND=Agg python -m attention_dynamics.reproductions --config {params.cfg:q}"
        " meanfield-aggregate --rates {input.rates:q} --noise {input.noise:q}"
        " --profiles {input.profiles:q} --out-rates {output.rates:q} --out-emergence {output.emergence:q}"
        " --out-profiles {output.profiles:q} --plot-heatmap {params.heat_png:q} {params.heat_pdf:q}"
        " --plot-peaks {params.peaks_png:q} {params.peaks_pdf:q} > {log:q} 2>&1"
        " && mv -f {params.heat_png:q} {output.heat_png:q} && mv -f {params.heat_pdf:q} {output.heat_pdf:q}"
        " && mv -f {params.peaks_png:q} {output.peaks_png:q} && mv -f {params.peaks_pdf:q} {output.peaks_pdf:q}"


rule emergence_growth:
    input:
        spectra=EMERGENCE_SPECTRA,
        emergence=f"{R}/tables/emergence.parquet",
        meanfield=f"{R}/tables/meanfield.parquet",
    output:
        spectra=f"{R}/tables/emergence_spectra.parquet",
        growth=f"{R}/tables/emergence_growth.parquet",
        growth_png=_repro_report("growth_rates", "growth_rates.rst", "BPA24 finite n"),
        growth_pdf=f"{R}/plots/reproductions/growth_rates.pdf",
        sel_png=_repro_report("emergence_selection", "emergence_selection.rst", "BPA24 finite n"),
        sel_pdf=f"{R}/plots/reproductions/emergence_selection.pdf",
    log:
        f"{R}/logs/reproductions/emergence_growth.log",
    benchmark:
        f"{R}/benchmarks/reproductions/emergence_growth.tsv"
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cfg=_job_config(REPRO, "emergence"),
        facts=lambda w: REPRO_FACTS["finite_n"],
        growth_png=_staged(f"{R}/plots/reproductions/growth_rates.png"),
        growth_pdf=_staged(f"{R}/plots/reproductions/growth_rates.pdf"),
        sel_png=_staged(f"{R}/plots/reproductions/emergence_selection.png"),
        sel_pdf=_staged(f"{R}/plots/reproductions/emergence_selection.pdf"),
    shell:
        "MPLBACKEND=Agg python -m attention_dynamics.reproductions --config {params.cfg:q}"
        " emergence-growth --spectra-inputs {input.spectra:q}"
        " --emergence {input.emergence:q} --meanfield {input.meanfield:q} --out-spectra {output.spectra:q}"
        " --out-growth {output.growth:q} --plot-growth {params.growth_png:q} {params.growth_pdf:q}"
        " --plot-selection {params.sel_png:q} {params.sel_pdf:q} > {log:q} 2>&1"
        " && mv -f {params.growth_png:q} {output.growth_png:q} && mv -f {params.growth_pdf:q} {output.growth_pdf:q}"
        " && mv -f {params.sel_png:q} {output.sel_png:q} && mv -f {params.sel_pdf:q} {output.sel_pdf:q}"
