"""The algorithms as data (PAPER.md, "The algorithms"): one record each, differing in a few choices.

A trainer needs no algorithm-specific `if`, only branches on the record's fields:

    alg = get_algorithm(name)
    advantages_PG, keep_PG = group_advantages(alg.advantage, rewards_PG, ...)  # filter + advantage
    # alg.advantage_source == "critic": token advantages from `gae` on `place_on_last_token`;
    # otherwise `broadcast_to_tokens`. alg.needs_pairs: rows are chosen then rejected responses.
    loss, metrics = POLICY_LOSSES[alg.loss](logp_BT, old_logp_BT, advantages_BT, mask_BT, ...)
"""

from __future__ import annotations

from dataclasses import dataclass

from minimalrl.algorithms._lookup import lookup
from minimalrl.algorithms.advantages import GROUP_RULES
from minimalrl.algorithms.policy_losses import POLICY_LOSSES

ADVANTAGE_SOURCES = ("group", "critic")


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: which samples it keeps, how rewards become advantages, which loss."""

    name: str
    """Registry key, as in PAPER.md's tables."""
    advantage: str
    """Key of `GROUP_RULES`: the keep filter and group advantage for the (P, G) reward table."""
    loss: str
    """Key of `POLICY_LOSSES`: "clipped", "is_no_clip", "sft" or "dpo"."""
    advantage_source: str = "group"
    """Either "group" (every token of a response gets its group advantage) or "critic" (GAE from
    a learned critic, with the response's reward on its last token)."""
    needs_critic: bool = False
    """A value model is trained alongside the policy; true exactly for source "critic"."""
    needs_reference: bool = False
    """The loss needs reference log-probs (DPO). A KL penalty, when enabled, needs one for any
    algorithm: that is a trainer setting, not a property of the algorithm."""
    needs_pairs: bool = False
    """The batch is (chosen, rejected) response pairs rather than single responses."""
    min_group_size: int = 1
    """Smallest n (responses per prompt) with which the algorithm is meaningful."""
    description: str = ""
    """One line for humans."""

    def __post_init__(self) -> None:
        lookup(GROUP_RULES, self.advantage, f"group advantage of {self.name!r}")
        lookup(POLICY_LOSSES, self.loss, f"policy loss of {self.name!r}")
        if self.advantage_source not in ADVANTAGE_SOURCES:
            raise ValueError(f"{self.name!r}: advantage_source must be in {ADVANTAGE_SOURCES}")
        if self.needs_critic != (self.advantage_source == "critic"):
            raise ValueError(f"{self.name!r}: needs_critic iff advantage_source == 'critic'")
        if self.min_group_size < 1:
            raise ValueError(f"{self.name!r}: min_group_size must be >= 1")


def _registry(*algorithms: Algorithm) -> dict[str, Algorithm]:
    return {algorithm.name: algorithm for algorithm in algorithms}


# fmt: off
ALGORITHMS: dict[str, Algorithm] = _registry(
    Algorithm("raft", "raft", "sft",
              description="Rejection sampling: SFT on every correct response"),
    Algorithm("raft++", "raft++", "clipped",
              description="RAFT with importance sampling and clipping (A = 1 on kept responses)"),
    Algorithm("raft++_no_clip", "raft++_no_clip", "is_no_clip",
              description="Ablation: RAFT++ without clipping (worse than RAFT in the paper)"),
    Algorithm("reinforce", "reinforce", "clipped",
              description="Reinforce with the raw reward as advantage, clipped ratio"),
    Algorithm("reinforce_rej", "reinforce_rej", "clipped", min_group_size=2,
              description="Reinforce on the prompts whose rewards are not all equal"),
    Algorithm("reinforce_rej_std", "reinforce_rej_std", "clipped", min_group_size=2,
              description="Reinforce-Rej with the reward divided by the group std"),
    Algorithm("reinforce_drop_all_wrong", "reinforce_drop_all_wrong", "clipped",
              description="Ablation: Reinforce without the all-wrong prompts"),
    Algorithm("reinforce_drop_all_correct", "reinforce_drop_all_correct", "clipped",
              description="Ablation: Reinforce without the all-correct prompts"),
    Algorithm("reinforce_mean", "reinforce_mean", "clipped", min_group_size=2,
              description="Ablation: Reinforce with the group mean as baseline"),
    Algorithm("reinforce_band", "reinforce_band", "clipped", min_group_size=2,
              description="Reinforce on prompts whose fraction correct lies in a band [lo, hi]"),
    Algorithm("grpo", "grpo", "clipped", min_group_size=2,
              description="GRPO: reward normalised by the group mean and std"),
    Algorithm("ppo", "ppo", "clipped", advantage_source="critic", needs_critic=True,
              description="PPO: GAE advantages from a learned critic, reward on the last token"),
    Algorithm("iterative_dpo", "iterative_dpo", "dpo", needs_reference=True, needs_pairs=True,
              min_group_size=2, description="Iterative DPO on a (correct, wrong) pair per prompt"),
)
# fmt: on


def get_algorithm(name: str) -> Algorithm:
    """`ALGORITHMS[name]`, or `UnknownNameError` (a ValueError, KeyError) listing valid names."""
    return lookup(ALGORITHMS, name, "algorithm")


_LOSS_SUMMARY = {
    "clipped": "−agg(min(s·A, clip(s)·A))",
    "is_no_clip": "−agg(s·A), no clipping",
    "sft": "NLL −agg(log π) (SFT)",
    "dpo": "DPO −log σ(β·margin)",
}


def _summary(fn: object) -> str:
    """First line of a function's docstring, without its full stop: its cell in the table."""
    return (getattr(fn, "__doc__", None) or "").strip().splitlines()[0].rstrip(".")


def _row(algorithm: Algorithm) -> list[str]:
    rule = GROUP_RULES[algorithm.advantage]
    if algorithm.advantage_source == "critic":
        advantage = "GAE(γ, λ) from the critic"
    elif algorithm.loss in ("sft", "dpo"):
        advantage = "— (unused)"
    else:
        advantage = _summary(rule.advantage)
    flags = (
        ("critic", algorithm.needs_critic),
        ("ref", algorithm.needs_reference),
        ("pairs", algorithm.needs_pairs),
    )
    needs = ", ".join(flag for flag, needed in flags if needed) or "—"
    loss = _LOSS_SUMMARY.get(algorithm.loss, algorithm.loss)
    kept = _summary(rule.keep)
    return [algorithm.name, kept, advantage, loss, needs, str(algorithm.min_group_size)]


def describe_registry() -> str:
    """A Markdown table of every registered algorithm, in the shape of PAPER.md's table."""
    header = ["name", "samples kept", "advantage", "loss", "critic/ref", "min n"]
    rows = [header] + [_row(algorithm) for algorithm in ALGORITHMS.values()]
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    separator = line(["-" * width for width in widths])
    return "\n".join([line(header), separator, *(line(row) for row in rows[1:])])
