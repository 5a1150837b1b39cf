# Grid cells are computed in chunks and then put at their per-cell paths (issues 14, 16):
#   simulate_chunk  many cells per job (config key `jobs`), one process pool of `threads` workers
#                   inside the job; every finished cell goes to the cell cache at once
#                   (results/cache/cells/), so a killed or failed job loses only the cells in
#                   flight and its resubmission computes only the others;
#   simulate_cell   one local job per cell: hard-links the cell's cache entry onto
#                   results/cells/<sweep>/<cell>/{runs,events,lifetimes,trajectories}.parquet
#                   (milliseconds; writes the per-cell log and benchmark file).
# Chunks are immutable (attention_dynamics.pipeline.resources.plan_chunks): a new β or sweep adds
# new chunks for the new cells only, so nothing that exists runs again (minimal re-runs).
# Logic: attention_dynamics.pipeline.{resources,runner,cellcache}; docs/slurm.md.

from attention_dynamics.pipeline import cellcache as _cellcache
from attention_dynamics.pipeline import resources as _resources
from attention_dynamics.pipeline import runner as _runner
from attention_dynamics.pipeline import slurm as _slurm

JOBS = _resources.jobs_config(config.get("jobs"))
# chunks never change once created (results/cache/chunks.json): new cells go to new chunks
_REGISTRY = f"{R}/cache/chunks.json"
CHUNKS, _registry = _resources.plan_chunks(PLAN, JOBS, registry=_resources.read_registry(_REGISTRY))
CHUNK_OF = _resources.chunk_of_cells(PLAN, CHUNKS)
if _MAIN:
    # link jobs compare cache entries against this fingerprint instead of computing their own
    os.environ[_runner.CODE_ENV] = _cellcache.code_fingerprint()
if _MAIN and _slurm.is_real_run():
    _resources.write_registry(_REGISTRY, _registry)
    # a missing cell whose cache entry is gone or damaged: its chunk runs again in this run
    for _stale in _runner.drop_stale_manifests(CHUNKS, R, {f"{c.sweep}/{c.path}" for c in PLAN.cells}):
        logger.warning(_stale)


wildcard_constraints:
    sweep=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    cell=r"(?:[a-z_]+~[^/]+/)*beta~[^/]+",
    chunk=r"[0-9][0-9][0-9]+",


localrules:
    simulate_cell,
    chunk_cells,


# the cell list of a chunk, as a file (it would make a long command line: in logs, in sbatch)
rule chunk_cells:
    output:
        f"{R}/cache/chunks/{{chunk}}.cells.json",
    log:
        f"{R}/logs/chunks/{{chunk}}.cells.log",
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=200,
        runtime=1,
    params:
        cells=lambda w: CHUNKS[w.chunk].cells_json(),
    shell:
        "python -m attention_dynamics chunk-spec --cells {params.cells:q} --out {output:q} > {log:q} 2>&1"


rule simulate_chunk:
    input:
        f"{R}/cache/chunks/{{chunk}}.cells.json",
    output:
        f"{R}/cache/chunks/{{chunk}}.json",
    log:
        f"{R}/logs/chunks/{{chunk}}.log",
    benchmark:
        f"{R}/benchmarks/chunks/{{chunk}}.tsv"
    conda:
        f"../{ENV}"
    threads: lambda w: CHUNKS[w.chunk].max_threads
    resources:
        mem_mb=lambda w, threads, attempt: CHUNKS[w.chunk].mem_mb(threads, attempt),
        runtime=lambda w, threads, attempt: CHUNKS[w.chunk].runtime_min(threads, attempt),
    params:
        base_seed=PLAN.config["base_seed"],
        cache=f"{R}/cache/cells",
    shell:
        "python -m attention_dynamics run-chunk --chunk {wildcards.chunk} --cells @{input:q}"
        " --base-seed {params.base_seed} --cache {params.cache:q} --jobs {threads}"
        " --manifest {output:q} > {log:q} 2>&1"


rule simulate_cell:
    input:
        lambda w: f"{R}/cache/chunks/{CHUNK_OF[w.sweep, w.cell]}.json",
    output:
        runs=f"{R}/cells/{{sweep}}/{{cell}}/runs.parquet",
        events=f"{R}/cells/{{sweep}}/{{cell}}/events.parquet",
        lifetimes=f"{R}/cells/{{sweep}}/{{cell}}/lifetimes.parquet",
        trajectories=f"{R}/cells/{{sweep}}/{{cell}}/trajectories.parquet",
    log:
        f"{R}/logs/cells/{{sweep}}/{{cell}}.log",
    conda:
        f"../{ENV}"
    threads: 1
    resources:
        mem_mb=200,
        runtime=1,
    params:
        cell=lambda w: PLAN.index[w.sweep, w.cell].json,
        seeds=lambda w: PLAN.index[w.sweep, w.cell].seeds,
        base_seed=PLAN.config["base_seed"],
        outdir=lambda w: f"{R}/cells/{w.sweep}/{w.cell}",
        benchmark=lambda w: f"{R}/benchmarks/cells/{w.sweep}/{w.cell}.tsv",
    shell:
        "python -m attention_dynamics link-cell --manifest {input:q} --path {wildcards.sweep}/{wildcards.cell}"
        " --cell {params.cell:q} --seeds {params.seeds} --base-seed {params.base_seed} --out {params.outdir:q}"
        " --benchmark {params.benchmark:q} > {log:q} 2>&1"
