"""OUTPUT/summary.json: the report's numbers for programs (every run's scores, every finding)."""

from __future__ import annotations

from minimalrl.eval.report.runs import Runs


def summary(runs: Runs, results: list[dict], findings: list[dict]) -> dict:
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
        "findings": findings,
    }
