"""Snakemake script for rule summary: the logic is attention_dynamics.report.run_from_snakemake."""
from attention_dynamics.report import run_from_snakemake

run_from_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
