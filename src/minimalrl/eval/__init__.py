"""Evaluation and reporting: the harness, paper comparisons, plots, metrics files, run summaries."""
