"""minimalrl.algorithms: the paper's algorithms as pure tensor functions plus a registry of records.

- `advantages`: keep filters and group advantages for (P, G) outcome rewards and verdicts.
- `losses`: `aggregate` and the token-level policy losses (clipped, no-clip IS, SFT).
- `kl`: KL-to-reference estimators and token entropy from logits.
- `ppo`: last-token rewards, GAE, whitening, clipped value loss.
- `dpo`: the DPO loss and preference pairs.
- `policy_losses`: every policy loss callable with one signature (`POLICY_LOSSES`).
- `axes`: the algorithm axes as settings (a record with choices replaced, presets, checks).
- `rollout_correction`: the sampler/π_old mismatch, truncated importance weights and masks.
- `registry`: the one table of `Algorithm` records (`ALGORITHMS`, `get_algorithm`,
  `group_advantages`, `describe_registry`).
"""

from minimalrl.algorithms._lookup import UnknownNameError
from minimalrl.algorithms.advantages import (
    BASELINES,
    SCALES,
    batch_std,
    broadcast_to_tokens,
    dynamic_sampling_take,
    filter_and_advantages,
    from_critic,
    group_outcome_stats,
    group_std,
    keep_all,
    keep_best_if_correct,
    keep_correct_and_wrong,
    keep_correct_fraction_in_band,
    keep_not_all_correct,
    keep_not_all_equal,
    keep_not_all_wrong,
    mean_std_normalised,
    normalised,
    ones,
    reward,
    reward_minus_mean,
    reward_over_std,
)
from minimalrl.algorithms.axes import RATIO_LOSSES, check_axes, preset_changes, with_axes
from minimalrl.algorithms.dpo import dpo_loss, dpo_policy_loss, make_preference_pairs, pair_indices
from minimalrl.algorithms.kl import KL_ESTIMATORS, entropy_from_logits, kl_penalty
from minimalrl.algorithms.losses import (
    AGGREGATIONS,
    aggregate,
    cispo_loss,
    clipped_policy_loss,
    gspo_loss,
    is_policy_loss,
    masked_mean,
    ratio_metrics,
    sft_loss,
)
from minimalrl.algorithms.policy_losses import (
    POLICY_LOSSES,
    PolicyLossFn,
    get_policy_loss,
    with_common_signature,
)
from minimalrl.algorithms.ppo import clipped_value_loss, gae, place_on_last_token, whiten
from minimalrl.algorithms.registry import (
    ALGORITHMS,
    Algorithm,
    describe_registry,
    get_algorithm,
    group_advantages,
)
from minimalrl.algorithms.rollout_correction import (
    ROLLOUT_CORRECTIONS,
    mismatch_metrics,
    rejection_mask,
    truncated_is_weights,
)

__all__ = [
    "AGGREGATIONS",
    "ALGORITHMS",
    "BASELINES",
    "KL_ESTIMATORS",
    "POLICY_LOSSES",
    "RATIO_LOSSES",
    "ROLLOUT_CORRECTIONS",
    "SCALES",
    "Algorithm",
    "PolicyLossFn",
    "UnknownNameError",
    "aggregate",
    "batch_std",
    "broadcast_to_tokens",
    "check_axes",
    "cispo_loss",
    "clipped_policy_loss",
    "clipped_value_loss",
    "describe_registry",
    "dpo_loss",
    "dpo_policy_loss",
    "dynamic_sampling_take",
    "entropy_from_logits",
    "filter_and_advantages",
    "from_critic",
    "gae",
    "get_algorithm",
    "get_policy_loss",
    "group_advantages",
    "group_outcome_stats",
    "group_std",
    "gspo_loss",
    "is_policy_loss",
    "keep_all",
    "keep_best_if_correct",
    "keep_correct_and_wrong",
    "keep_correct_fraction_in_band",
    "keep_not_all_correct",
    "keep_not_all_equal",
    "keep_not_all_wrong",
    "kl_penalty",
    "make_preference_pairs",
    "masked_mean",
    "mean_std_normalised",
    "mismatch_metrics",
    "normalised",
    "ones",
    "pair_indices",
    "place_on_last_token",
    "preset_changes",
    "ratio_metrics",
    "rejection_mask",
    "reward",
    "reward_minus_mean",
    "reward_over_std",
    "sft_loss",
    "truncated_is_weights",
    "whiten",
    "with_axes",
    "with_common_signature",
]
