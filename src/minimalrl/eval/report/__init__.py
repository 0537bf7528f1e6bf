"""The report of a compare: OUTPUT/report.md, OUTPUT/summary.json and OUTPUT/figures/.

Every number comes with a 95% interval: Student's t over seeds and held-out problems, their
variances added (`minimalrl.eval.findings`); the paper's findings get an effect, an interval and a
verdict. The parts: `runs` reads the finished runs, `tables`, `figures` and `prose` write the
report's sections from them, `summary` the JSON; `write_report` puts them together.
"""

from __future__ import annotations

import json
from pathlib import Path

from minimalrl.config import TrainConfig
from minimalrl.eval.report import prose
from minimalrl.eval.report.figures import curve_figures, heldout_curve_figure, regime_histogram
from minimalrl.eval.report.runs import LONG_ARM, Runs, measure_findings
from minimalrl.eval.report.summary import summary
from minimalrl.eval.report.tables import (
    SETTLE_NOTE,
    ablations_table,
    curve_table,
    findings_table,
    results_table,
    seeds_table,
)
from minimalrl.output import write_text_atomic


def write_report(
    output: Path,
    base: TrainConfig,
    names: list[str],
    seeds: list[int],
    initial: dict,
    results: list[dict],
    rerun: str,
) -> Path:
    """OUTPUT/report.md, summary.json and figures/ from the finished runs (`names`: the runs of
    the compare, in order); `rerun` is the command that reruns one of them (RUN, SEED, NEW_DIR
    to fill in)."""
    runs = Runs(output, results, initial)
    fig_dir = output / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    regime_histogram(runs, fig_dir)
    measured = measure_findings(runs)
    lines = [
        *prose.header(runs, base, seeds, results, rerun),
        "",
        "## Regime",
        "",
        *prose.regime(runs),
        "",
        "## Results",
        "",
        *results_table(runs, names),
        "",
        "### Per seed",
        "",
        prose.PER_SEED,
        "",
        *seeds_table(runs, names),
        "",
        *ablations_table(runs, names),
        "## The paper's findings at this scale",
        "",
        prose.FINDINGS_PREFACE,
        "",
        *findings_table(measured),
        "",
        SETTLE_NOTE,
        "",
        *_long_arm_section(runs, names, seeds, fig_dir),
        "## Curves",
        *curve_figures(runs, names, fig_dir),
        "",
    ]
    path = output / "report.md"
    write_text_atomic(path, "\n".join(lines))
    body = json.dumps(summary(runs, results, measured), indent=1)
    write_text_atomic(output / "summary.json", body + "\n")
    return path


def _long_arm_section(runs: Runs, names: list[str], seeds: list[int], fig_dir: Path) -> list[str]:
    """Held-out scores along training: the long arm's progress, its table and figure."""
    figure = heldout_curve_figure(runs, names, seeds, fig_dir)
    table = curve_table(runs, names, seeds)
    return [
        f"## The long arm: {LONG_ARM.a} and {LONG_ARM.b}, held-out scores along training",
        "",
        *prose.long_arm(runs, names, seeds, LONG_ARM),
        "",
        *([*table, ""] if table else []),
        *([f"![held-out along training](figures/{figure.name})", ""] if figure else []),
        prose.PAPER_SHAPE,
        "",
    ]
