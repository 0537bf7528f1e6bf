"""The algorithm axes as settings (docs/concepts/algorithms.md, "Algorithm axes"): a record with
some of its choices replaced, a named variant's presets, and the combinations that make no sense.

`values` below is a mapping of the training config's fields (TrainConfig, by name); these
functions read it and know nothing else of the config. A refused combination is a ValueError
whose message names the settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from minimalrl.algorithms.advantages import BASELINES, SCALES, keep_all, normalised
from minimalrl.algorithms.policy_losses import POLICY_LOSSES
from minimalrl.algorithms.registry import Algorithm
from minimalrl.algorithms.rollout_correction import ROLLOUT_CORRECTIONS, TOKEN_LEVEL

RATIO_LOSSES = ("clipped", "is_no_clip", "cispo", "gspo")
"""The losses `policy_loss` may name: those that weigh tokens by advantage through a ratio."""
GROUP_BASELINES = ("group_mean", "leave_one_out")


def with_axes(
    alg: Algorithm,
    *,
    baseline: str | None = None,
    scale: str | None = None,
    loss: str | None = None,
) -> Algorithm:
    """`alg` with the given advantage baseline / scale and loss (None: its own)."""
    changes: dict[str, object] = {}
    if baseline is not None or scale is not None:
        baseline = baseline or alg.advantage.baseline  # type: ignore[attr-defined]
        scale = scale or alg.advantage.scale  # type: ignore[attr-defined]
        changes["advantage"] = normalised(baseline, scale)
        compares = baseline in GROUP_BASELINES or scale == "group_std"
        changes["min_group_size"] = max(alg.min_group_size, 2 if compares else 1)
    if loss is not None:
        changes["loss"] = POLICY_LOSSES[loss]
    return dataclasses.replace(alg, **changes) if changes else alg


def preset_changes(
    alg: Algorithm, values: Mapping[str, object], defaults: Mapping[str, object]
) -> dict[str, object]:
    """The presets of `alg` for the fields `values` leaves at their `defaults`."""
    return {k: v for k, v in alg.presets.items() if values[k] == defaults[k] != v}


def check_axes(name: str, alg: Algorithm, values: Mapping[str, object]) -> None:
    """Refuse axis values out of range and combinations that make no sense (ValueError)."""
    for field, table in (("advantage_baseline", BASELINES), ("advantage_scale", SCALES)):
        if values[field] is not None and values[field] not in table:
            raise ValueError(
                f"{field} must be one of {tuple(table)} or None, got {values[field]!r}"
            )
    loss = values["policy_loss"]
    if loss is not None and loss not in RATIO_LOSSES:
        raise ValueError(f"policy_loss must be one of {RATIO_LOSSES} or None, got {loss!r}")
    if loss is not None and not _has_ratio(alg):
        raise ValueError(f"policy_loss: {name} trains without a π_old ratio (SFT or DPO)")
    if (values["advantage_baseline"], values["advantage_scale"]) != (None, None) and (
        alg.needs_critic or not alg.reads_advantages or not hasattr(alg.advantage, "baseline")
    ):
        raise ValueError(
            f"advantage_baseline/advantage_scale: {name} has no group advantage to change"
        )
    baseline = values["advantage_baseline"] or getattr(alg.advantage, "baseline", None)
    if baseline == "leave_one_out" and values["samples_per_prompt"] < 2:  # type: ignore[operator]
        raise ValueError(
            "advantage_baseline = leave_one_out needs samples_per_prompt >= 2 (the other "
            f"responses of the prompt), got {values['samples_per_prompt']}"
        )
    if values["filtered"] == "zero" and not alg.reads_advantages:
        raise ValueError(f"filtered = zero: {name}'s loss does not weigh by advantage")
    if values["dynamic_sampling"] and (alg.keep is keep_all or alg.needs_pairs):
        raise ValueError(
            f"dynamic_sampling: {name}'s filter keeps every prompt (or it trains on pairs), so "
            "there is nothing to resample; use an algorithm that filters (dapo, reinforce_rej...)"
        )
    _check_rollout_correction(name, alg, values)
    for field in ("dynamic_sampling_rounds", "loss_agg_max_len"):
        least = 1 if field == "dynamic_sampling_rounds" else 0
        if values[field] < least:  # type: ignore[operator]
            raise ValueError(f"{field} must be >= {least}, got {values[field]}")


def _has_ratio(alg: Algorithm) -> bool:
    """The loss weighs tokens through π_θ/π_old (not SFT; not DPO, whose π_old is a reference)."""
    return "old_logp_BT" in alg.loss.reads and not alg.needs_pairs  # type: ignore[attr-defined]


def _check_rollout_correction(name: str, alg: Algorithm, values: Mapping[str, object]) -> None:
    """A correction needs a loss that weighs tokens through π_old (not SFT, not DPO's pairs); a
    token-level one cannot weigh GSPO's single ratio per response."""
    correction = values["rollout_correction"]
    if correction not in ROLLOUT_CORRECTIONS:
        raise ValueError(
            f"rollout_correction must be one of {ROLLOUT_CORRECTIONS}, got {correction!r}"
        )
    if values["rollout_correction_cap"] < 1:  # type: ignore[operator]
        raise ValueError(
            "rollout_correction_cap must be >= 1 (below, tokens the sampler and π_old agree on "
            f"would be down-weighted), got {values['rollout_correction_cap']}"
        )
    low, high = values["rollout_correction_min"], values["rollout_correction_max"]
    if not 0 <= low < 1 < high:  # type: ignore[operator]
        raise ValueError(
            "need 0 <= rollout_correction_min < 1 < rollout_correction_max (the band holds "
            f"r = 1, where the sampler and π_old agree), got {low}, {high}"
        )
    if correction == "none":
        return
    if not _has_ratio(alg):
        raise ValueError(
            f"rollout_correction = {correction}: {name}'s loss (SFT or DPO) has no π_old ratio "
            "to correct"
        )
    loss = values["policy_loss"] or next(k for k, v in POLICY_LOSSES.items() if v is alg.loss)
    if loss == "gspo" and correction in TOKEN_LEVEL:
        where = "policy_loss = gspo" if values["policy_loss"] else f"algo = {name}"
        raise ValueError(
            f"rollout_correction = {correction} with {where}: GSPO weighs each response by one "
            "sequence ratio, which a token-level correction would break; use seq_mask"
        )
