# Helper functions shared by the workflow files, kept apart from the rules as snakemake --lint asks.
import os

from attention_dynamics.report import sweep_facts as _sweep_facts


def _staged(path):
    """Temporary name of a figure next to ``path``: attention_dynamics.reproductions saves figures
    in place, so its rules write them here and rename them (mv in one folder = rename(2), atomic).
    """
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.snakemake-tmp{os.path.splitext(tail)[1]}")


def _repro_report(figure, caption, subcategory):
    """A reproduction's PNG in the report (its PDF stays a file, for papers)."""
    return report(
        f"{R}/plots/reproductions/{figure}.png",
        caption=f"../report/{caption}",
        category="Reproductions",
        subcategory=subcategory,
        labels={"figure": figure},
    )
