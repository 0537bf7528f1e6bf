"""Measuring: the held-out harness, metrics files, score curves, findings, plots, reports, run
summaries. The loop stands on it (evaluate, metrics); nothing here runs a training."""
