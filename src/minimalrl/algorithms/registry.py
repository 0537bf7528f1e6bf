"""The algorithms as data (PAPER.md, "The algorithms"): one record each, differing in a few choices.

A record names its functions: which responses it keeps, how rewards become advantages, which loss
it minimises. A trainer needs no algorithm-specific `if`, only the record:

    alg = get_algorithm(name)
    advantages_PG, keep_PG = filter_and_advantages(alg.keep, alg.advantage, rewards_PG, correct_PG)
    # alg.needs_critic: token advantages from `gae` on `place_on_last_token`, otherwise
    # `broadcast_to_tokens`; alg.needs_pairs: rows are chosen then rejected responses.
    loss, metrics = alg.loss(logp_BT, old_logp_BT, advantages_BT, mask_BT, **settings)

Adding a variant is adding a line to `ALGORITHMS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from minimalrl.algorithms._lookup import lookup
from minimalrl.algorithms.advantages import (
    AdvantageFn,
    KeepFn,
    batch_whitened,
    filter_and_advantages,
    from_critic,
    keep_all,
    keep_best_if_correct,
    keep_correct_and_wrong,
    keep_correct_fraction_in_band,
    keep_not_all_correct,
    keep_not_all_equal,
    keep_not_all_wrong,
    leave_one_out,
    mean_over_batch_std,
    mean_std_normalised,
    ones,
    reward,
    reward_minus_mean,
    reward_over_std,
)
from minimalrl.algorithms.policy_losses import POLICY_LOSSES, PolicyLossFn


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: which samples it keeps, how rewards become advantages, which loss."""

    keep: KeepFn
    """Keep filter: reads the verdicts `correct_PG` (or `rewards_PG`), returns `keep_PG`."""
    advantage: AdvantageFn
    """Group advantage (rewards_PG, *, eps) -> advantages_PG; `from_critic` marks GAE from a
    learned critic, with the response's reward on its last token."""
    loss: PolicyLossFn
    """An entry of `POLICY_LOSSES`: (logp_BT, old_logp_BT, advantages_BT, mask_BT, **settings)."""
    min_group_size: int = 1
    """Smallest n (responses per prompt) with which the algorithm is meaningful."""
    needs_reference: bool = False
    """The loss needs reference log-probs (DPO). A KL penalty, when enabled, needs one for any
    algorithm: that is a trainer setting, not a property of the algorithm."""
    needs_pairs: bool = False
    """The batch is (chosen, rejected) response pairs rather than single responses."""
    presets: dict[str, object] = field(default_factory=dict)
    """Config settings a named variant comes with (DAPO's clip_high 0.28...): `TrainConfig`
    takes them for the fields a config leaves at their defaults."""
    description: str = ""
    """One line for humans."""

    def __post_init__(self) -> None:
        if self.loss not in POLICY_LOSSES.values():
            raise ValueError(f"{self.description!r}: loss must be an entry of POLICY_LOSSES")
        if self.min_group_size < 1:
            raise ValueError(f"{self.description!r}: min_group_size must be >= 1")

    @property
    def needs_critic(self) -> bool:
        """A value model is trained alongside the policy (its advantages come from GAE)."""
        return self.advantage is from_critic

    @property
    def reads_advantages(self) -> bool:
        """Whether the loss weighs tokens by their advantage (not DPO; RAFT's SFT weighs by its
        advantage, 1 on kept responses and 0 on those a zeroing filter leaves in the batch)."""
        return "advantages_BT" in self.loss.reads  # type: ignore[attr-defined]


A = Algorithm
clipped, no_clip, sft, dpo, cispo, gspo = (
    POLICY_LOSSES[k] for k in ("clipped", "is_no_clip", "sft", "dpo", "cispo", "gspo")
)
ZERO = {"filtered": "zero"}  # filtered-out responses stay in the batch with advantage 0

# fmt: off
ALGORITHMS: dict[str, Algorithm] = {
    # name: A(keep filter, advantage, loss, ...) and one line for humans
    "raft": A(keep_best_if_correct, ones, sft,
        description="Rejection sampling: SFT on every correct response"),
    "raft++": A(keep_best_if_correct, ones, clipped,
        description="RAFT with importance sampling and clipping (A = 1 on kept responses)"),
    "raft++_no_clip": A(keep_best_if_correct, ones, no_clip,
        description="Ablation: RAFT++ without clipping (worse than RAFT in the paper)"),
    "reinforce": A(keep_all, reward, clipped,
        description="Reinforce with the raw reward as advantage, clipped ratio"),
    "reinforce_rej": A(keep_not_all_equal, reward, clipped, min_group_size=2,
        description="Reinforce on the prompts whose rewards are not all equal"),
    "reinforce_rej_std": A(keep_not_all_equal, reward_over_std, clipped, min_group_size=2,
        description="Reinforce-Rej with the reward divided by the group std"),
    "reinforce_drop_all_wrong": A(keep_not_all_wrong, reward, clipped,
        description="Ablation: Reinforce without the all-wrong prompts"),
    "reinforce_drop_all_correct": A(keep_not_all_correct, reward, clipped,
        description="Ablation: Reinforce without the all-correct prompts"),
    "reinforce_mean": A(keep_all, reward_minus_mean, clipped, min_group_size=2,
        description="Ablation: Reinforce with the group mean as baseline"),
    "reinforce_band": A(keep_correct_fraction_in_band, reward, clipped, min_group_size=2,
        description="Reinforce on prompts whose fraction correct is in [lo, hi]"),
    "grpo": A(keep_all, mean_std_normalised, clipped, min_group_size=2,
        description="GRPO: reward normalised by the group mean and std"),
    "ppo": A(keep_all, from_critic, clipped,
        description="PPO: GAE advantages from a learned critic, reward on the last token"),
    "iterative_dpo": A(keep_correct_and_wrong, reward, dpo, min_group_size=2,
        needs_reference=True, needs_pairs=True,
        description="Iterative DPO on a (correct, wrong) pair per prompt"),
    # The released code's zeroing: rejected prompts count in the denominator and the step count.
    "reinforce_rej_zero": A(keep_not_all_equal, reward, clipped, min_group_size=2, presets=ZERO,
        description="Reinforce-Rej, rejected prompts kept with advantage 0"),
    "reinforce_rej_std_zero": A(keep_not_all_equal, reward_over_std, clipped, min_group_size=2,
        presets=ZERO, description="Reinforce-Rej-std, rejected prompts kept with advantage 0"),
    "reinforce_drop_all_wrong_zero": A(keep_not_all_wrong, reward, clipped, presets=ZERO,
        description="Reinforce, all-wrong prompts kept with advantage 0"),
    "reinforce_drop_all_correct_zero": A(keep_not_all_correct, reward, clipped, presets=ZERO,
        description="Reinforce, all-correct prompts kept with advantage 0"),
    # Variants of the peers (docs/concepts/algorithms.md, "Algorithm axes", has the sources).
    "rloo": A(keep_all, leave_one_out, clipped, min_group_size=2,
        description="RLOO: the other responses' mean as baseline (arXiv 2402.14740)"),
    "dr_grpo": A(keep_all, reward_minus_mean, clipped, min_group_size=2,
        presets={"loss_agg": "seq_mean_token_sum_norm"},
        description="Dr. GRPO: no std, constant normaliser L (arXiv 2503.20783)"),
    "lite_ppo": A(keep_all, mean_over_batch_std, clipped, min_group_size=2,
        description="Lite PPO: group mean, batch std, token mean (arXiv 2508.08221)"),
    "reinforce_pp": A(keep_all, batch_whitened, clipped,
        description="REINFORCE++: rewards whitened over the batch (arXiv 2501.03262)"),
    "dapo": A(keep_not_all_equal, mean_std_normalised, clipped, min_group_size=2,
        presets={"clip_high": 0.28, "dynamic_sampling": True},
        description="DAPO: clip-higher, token mean, dynamic sampling (arXiv 2503.14476)"),
    "gspo": A(keep_all, mean_std_normalised, gspo, min_group_size=2,
        presets={"clip_low": 3e-4, "clip_high": 4e-4, "loss_agg": "seq_mean_token_mean"},
        description="GSPO: one clipped ratio per sequence (arXiv 2507.18071)"),
    # MiniMax-M1 sets no lower bound on the IS weight and tunes the upper one only; clip_low 1
    # is a lower bound of 0, and clip_high 4 caps the weight at 5, TRL's ScaleRL recipe
    # (arXiv 2510.13786; TRL `loss_type="cispo", epsilon_high=5.0`, its cap on the weight).
    "cispo": A(keep_all, mean_std_normalised, cispo, min_group_size=2,
        presets={"clip_low": 1.0, "clip_high": 4.0},
        description="CISPO: detached IS weight, capped above only, on A·log π (arXiv 2506.13585)"),
}
# fmt: on


def get_algorithm(name: str) -> Algorithm:
    """`ALGORITHMS[name]`, or `UnknownNameError` (a ValueError, KeyError) listing valid names."""
    return lookup(ALGORITHMS, name, "algorithm")


def group_advantages(
    name: str,
    rewards_PG: Tensor,
    *,
    correct_PG: Tensor | None = None,
    correct_reward: float = 1.0,
    eps: float = 1e-6,
    lo: float | None = None,
    hi: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Algorithm `name`'s filter and advantage on outcome rewards (P, G): (advantages_PG, keep_PG).

    `keep_PG` is bool; a filtered-out response has advantage 0. `correct_PG` holds the verdicts;
    left out, a response counts as correct when its reward is >= `correct_reward` (binary
    rewards). `lo`/`hi` are read only by `reinforce_band`, `eps` only by the std-normalised
    rules. An unknown `name` raises `UnknownNameError` (a ValueError) listing the valid names.
    """
    alg = get_algorithm(name)
    rewards_PG = torch.as_tensor(rewards_PG)
    if correct_PG is None:
        correct_PG = rewards_PG >= correct_reward
    return filter_and_advantages(
        alg.keep, alg.advantage, rewards_PG, correct_PG, eps=eps, lo=lo, hi=hi
    )


def _summary(fn: object) -> str:
    """First line of a function's docstring, without its full stop: its cell in the table."""
    return (getattr(fn, "__doc__", None) or "").strip().splitlines()[0].rstrip(".")


def _row(name: str, algorithm: Algorithm) -> list[str]:
    advantage = _summary(algorithm.advantage) if algorithm.reads_advantages else "— (unused)"
    flags = (
        ("critic", algorithm.needs_critic),
        ("ref", algorithm.needs_reference),
        ("pairs", algorithm.needs_pairs),
    )
    needs = ", ".join(flag for flag, needed in flags if needed) or "—"
    kept = _summary(algorithm.keep)
    loss = _summary(algorithm.loss)
    presets = ", ".join(f"{k}={_setting(v)}" for k, v in algorithm.presets.items()) or "—"
    return [name, kept, advantage, loss, needs, str(algorithm.min_group_size), presets]


def _setting(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe_registry() -> str:
    """A Markdown table of every registered algorithm, in the shape of PAPER.md's table."""
    header = ["name", "samples kept", "advantage", "loss", "critic/ref", "min n", "settings"]
    rows = [header] + [_row(name, algorithm) for name, algorithm in ALGORITHMS.items()]
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    separator = line(["-" * width for width in widths])
    return "\n".join([line(header), separator, *(line(row) for row in rows[1:])])
