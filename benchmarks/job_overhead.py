"""CPU a sweep spends outside its simulations: the per-job overhead of the grid-cell jobs (issue 14.4).

    python benchmarks/job_overhead.py [--config config/config.yaml] [--cores 2] CHECKOUT [CHECKOUT ...]

Run it from a checkout with a cell cache (``pipeline/cellcache.py``); compare against an older
commit with ``git worktree add /tmp/before <commit>`` and pass both folders. For each checkout, its
workflow and ``src/`` are copied to a scratch folder, the compiled kernels are loaded once (so no
run pays numba's first compilation), and the sweep runs in two steps, each measured with
``getrusage(RUSAGE_CHILDREN)`` (the Snakemake driver and every job it started, CPU seconds):

1. ``snakemake --cores N --until simulate_cell``: every grid cell and nothing after;
2. ``snakemake --cores N``: the rest (tables, fits, plots, reproductions, summary).

The simulations' own CPU time is the sum of ``cpu_seconds`` (per seed, measured inside the worker
processes) over the cell-cache entries of the checkouts that have them: the same cells and seeds
in every checkout. ``overhead`` = step 1 − simulations: interpreter start-ups, imports, table
writing, Snakemake's scheduling of the jobs; its share is taken of the whole run (steps 1 + 2).
Also printed: the CPU of one per-cell link job (``attention-dynamics link-cell``) where there is one.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

COPY = ("Snakefile", "config", "workflow", "profiles", "src")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    t0 = _children_cpu()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    cpu = _children_cpu() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return cpu, proc.stdout + proc.stderr


def _job_count(output: str) -> int:
    m = re.findall(r"^total\s+(\d+)\s*$", output, re.M)
    return int(m[0]) if m else 0


def _copy(checkout: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in COPY:
        src = checkout / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", ".snakemake", "results"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def simulation_cpu(results: Path) -> tuple[float, int]:
    """Σ cpu_seconds of every cache entry below ``results/cache/cells`` and the number of entries."""
    total, n = 0.0, 0
    for f in (results / "cache" / "cells").rglob("entry.json"):
        record = json.loads(f.read_text())
        total += sum(float(c) for c in record.get("cpu_seconds", []))
        n += 1
    return total, n


def link_job_cpu(work: Path, env: dict, n: int = 5) -> float | None:
    """Median CPU seconds of ``python -m attention_dynamics link-cell`` on ``n`` finished cells."""
    manifests = sorted((work / "results" / "cache" / "chunks").glob("[0-9]*[0-9].json"))
    if not manifests:
        return None
    record = json.loads(manifests[0].read_text())
    values = []
    for path, where in list(record["cells"].items())[:n]:
        entry = json.loads((Path(where["entry"]) if Path(where["entry"]).is_absolute()
                            else work / where["entry"]).joinpath("entry.json").read_text())
        material = entry["material"]
        with tempfile.TemporaryDirectory() as out:
            cpu, _ = _timed([sys.executable, "-m", "attention_dynamics", "link-cell", "--manifest", str(manifests[0]),
                             "--path", path, "--cell", json.dumps(material["cell"]),
                             "--seeds", str(len(material["seeds"])), "--base-seed", str(material["base_seed"]),
                             "--out", out, "--benchmark", f"{out}/b.tsv"], work, env)
        values.append(cpu)
    values.sort()
    return values[len(values) // 2]


def measure(checkout: Path, scratch: Path, config: str, cores: int) -> dict:
    work = _copy(checkout, scratch)
    env = {**os.environ, "PYTHONPATH": str(work / "src"), "MPLBACKEND": "Agg"}
    env.pop("SNAKEMAKE_PROFILE", None)
    kernels = subprocess.run([sys.executable, "-m", "attention_dynamics.engine.kernels"], cwd=work, env=env,
                             capture_output=True, text=True)
    if kernels.returncode != 0:
        print(f"  (no compiled kernels in {checkout}: {kernels.stderr.strip()[-200:]})")
    smk = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", config]
    cells_cpu, out1 = _timed([*smk, "--until", "simulate_cell"], work, env)
    rest_cpu, out2 = _timed(smk, work, env)
    sims, entries = simulation_cpu(work / "results")
    return {"checkout": str(checkout), "work": str(work), "cells_step_cpu": cells_cpu, "cells_step_jobs": _job_count(out1),
            "rest_cpu": rest_cpu, "rest_jobs": _job_count(out2), "simulation_cpu": sims if entries else None,
            "link_job_cpu": link_job_cpu(work, env)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkouts", nargs="+", type=Path)
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--keep", action="store_true", help="keep the scratch folders")
    a = p.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="ad-job-overhead-"))
    rows = [measure(c.resolve(), scratch / f"{i}", a.config, a.cores) for i, c in enumerate(a.checkouts)]
    sims = [r["simulation_cpu"] for r in rows if r["simulation_cpu"] is not None]
    if not sims:
        sys.exit("no checkout has a cell cache: the simulations' CPU time is unknown")
    sim = sum(sims) / len(sims)
    print(f"simulations (Σ cpu_seconds of the cell-cache entries): {sim:.1f} CPU-s "
          f"({', '.join(f'{s:.1f}' for s in sims)})")
    print(f"{'checkout':40s} {'cell step':>10s} {'jobs':>5s} {'overhead':>9s} {'/job':>6s} {'whole run':>10s} "
          f"{'overhead share':>15s} {'link job':>9s}")
    for r in rows:
        over = r["cells_step_cpu"] - sim
        whole = r["cells_step_cpu"] + r["rest_cpu"]
        link = f"{r['link_job_cpu']:.3f}" if r["link_job_cpu"] is not None else "-"
        print(f"{r['checkout'][-40:]:40s} {r['cells_step_cpu']:10.1f} {r['cells_step_jobs']:5d} {over:9.1f} "
              f"{over / max(r['cells_step_jobs'], 1):6.2f} {whole:10.1f} {over / whole:15.1%} {link:>9s}")
    print(json.dumps(rows, indent=1))
    if not a.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
