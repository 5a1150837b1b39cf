"""Snakemake script for rule aggregate: the logic is attention_dynamics.pipeline.aggregate."""
from attention_dynamics.pipeline.aggregate import run_from_snakemake

run_from_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
