"""OUTPUT/summary.json: the report's numbers for programs (every run's scores, every finding)."""

from __future__ import annotations

from minimalrl.eval.report.runs import Measured, Runs
from minimalrl.eval.report.tables import finite


def summary(runs: Runs, results: list[dict], measured: list[Measured]) -> dict:
    init = runs.initial
    return {
        "eval": {
            "problems": init["problems"],
            "k": runs.n,
            "temperature": init["temperature"],
            "data": init["settings"]["data"],
        },
        "initial": {
            "model": init["model"],
            "model_sha256": init["model_sha256"],
            "avg_at_k": init["avg_at_n"],
            "pass_at_k": init["pass_at_k"],
            "greedy": init.get("greedy"),
            "train_temperature_avg": init.get("train_temperature_avg"),
        },
        "runs": [
            {
                "run": r["run"],
                "algo": r["algo"],
                "seed": r["seed"],
                "iterations": r["iterations"],
                "optimizer_steps": r["optimizer_steps"],
                "control": r["control"],
                "settings": r.get("settings") or {},
                "avg_at_k": {"before": init["avg_at_n"], "after": r["after"]["avg_at_n"]},
                "pass_at_k": {"before": init["pass_at_k"], "after": r["after"]["pass_at_k"]},
                "greedy": {"before": init.get("greedy"), "after": r["after"].get("greedy")},
            }
            for r in results
        ],
        "findings": finding_rows(measured),
    }


def finding_rows(measured: list[Measured]) -> list[dict]:
    """Every finding measured (those whose runs have not finished left out)."""
    rows = []
    for m in measured:
        f, res = m.finding, m.now
        if res is None:
            continue
        settle = m.settle
        rows.append(
            {
                "name": f.name,
                "statement": f.statement,
                "effect": finite(res.effect),
                "ci95": [finite(res.ci95[0]), finite(res.ci95[1])],
                "verdict": res.verdict,
                "seeds": res.seeds,
                "problems": res.problems,
                "measure": f.measure,
                "a": f.a,
                "b": f.b,
                "base": f.base,
                "claim": f.claim,
                "margin": f.margin,
                "verdict_first_seeds": m.first.verdict if m.first is not None else None,
                "first_seeds": m.first.seeds if m.first is not None else 0,
                "seeds_to_settle": None
                if settle is None
                else {"seeds": settle.seeds, "verdict": settle.verdict or None, "why": settle.why},
            }
        )
    return rows
