"""minimalrl: the minimalist family of RL algorithms for LLM reasoning (arXiv 2504.11343)."""

__version__ = "0.1.0"
