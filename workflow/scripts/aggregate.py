"""Snakemake script for rule aggregate: the logic is attention_dynamics.aggregate."""
from attention_dynamics.aggregate import run_from_snakemake

run_from_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
