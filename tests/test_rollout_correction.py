"""Rollout correction (issue 17, item 5): the sampler's log-probs beside π_old's, truncated
importance weights and masks by hand, the loss and gradient unchanged when a batch is split into
micro-batches, and the records that carry the sampler's log-probs."""

from __future__ import annotations

import math

import pytest
import torch

from minimalrl.algorithms import (
    AGGREGATIONS,
    POLICY_LOSSES,
    mismatch_metrics,
    rejection_mask,
    truncated_is_weights,
)
from minimalrl.config import TrainConfig
from minimalrl.experience import _join
from minimalrl.rollout import Rollout

D = torch.float64


def _logs(*probs: float) -> torch.Tensor:
    return torch.tensor(probs, dtype=D).log()


# --- the formulas, by hand ------------------------------------------------------------------------


def test_truncated_is_weights_by_hand():
    # r = π_old/π_sampler = 0.5/0.25, 0.2/0.4, 0.9/0.3 = 2, 0.5, 3; the fourth token is padding.
    old = torch.cat([_logs(0.5, 0.2, 0.9), torch.tensor([-7.0], dtype=D)])[None]
    sampler = torch.cat([_logs(0.25, 0.4, 0.3), torch.tensor([-1.0], dtype=D)])[None]
    mask = torch.tensor([[1, 1, 1, 0]])
    weights, metrics = truncated_is_weights(old, sampler, mask, cap=2.5)
    # min(r, 2.5) = 2, 0.5, 2.5; 0 on the pad (its r, e^-6, is not a token's).
    torch.testing.assert_close(weights, torch.tensor([[2.0, 0.5, 2.5, 0.0]], dtype=D))
    assert metrics["tis_weight_mean"].item() == pytest.approx(5.0 / 3)
    assert metrics["tis_capped"].item() == pytest.approx(1.0 / 3)  # only the 3 was cut
    assert not weights.requires_grad


def test_token_mask_by_hand():
    # r = 1.5, 0.4, 3, 1.1; the band [0.5, 2] keeps the first and the last.
    old = _logs(0.6, 0.2, 0.9, 0.55)[None]
    sampler = _logs(0.4, 0.5, 0.3, 0.5)[None]
    kept = rejection_mask(old, sampler, torch.ones(1, 4), "token", 0.5, 2.0)
    assert kept.tolist() == [[True, False, False, True]]


def test_sequence_mask_by_hand():
    # Per row, token ratios and their product ∏ r over the valid tokens:
    #   row 0: 1.5, 1.2 -> 1.8 (in [0.5, 2]: kept)    row 1: 1.5, 1.5 -> 2.25 (out)
    #   row 2: 0.9, pad -> 0.9 (kept)                  row 3: 3, 0.6 -> 1.8 (kept, though 3 alone
    #   is outside the band: the sequence level judges the response, not its tokens)
    ratios = torch.tensor([[1.5, 1.2], [1.5, 1.5], [0.9, 40.0], [3.0, 0.6]], dtype=D)
    sampler = torch.full((4, 2), -1.0, dtype=D)
    old = sampler + ratios.log()
    mask = torch.tensor([[1, 1], [1, 1], [1, 0], [1, 1]])
    kept = rejection_mask(old, sampler, mask, "sequence", 0.5, 2.0)
    assert kept.tolist() == [[True, True], [False, False], [True, False], [True, True]]
    token = rejection_mask(old, sampler, mask, "token", 0.5, 2.0)
    assert token.tolist() == [[True, True], [True, True], [True, False], [False, True]]


def test_mismatch_metrics_by_hand():
    # r = 2, 0.5, 1, 1.25 (and a padding token that must not count).
    sampler = torch.full((1, 5), -2.0, dtype=D)
    old = sampler + torch.tensor([[2.0, 0.5, 1.0, 1.25, 100.0]], dtype=D).log()
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    m = {k: v.item() for k, v in mismatch_metrics(old, sampler, mask).items()}
    ln2, ln125 = math.log(2), math.log(1.25)
    assert m["mismatch_abs_log_ratio"] == pytest.approx((2 * ln2 + ln125) / 4)  # 0.402359
    assert (m["mismatch_ratio_max"], m["mismatch_ratio_min"]) == pytest.approx((2.0, 0.5))
    # k3: r − 1 − ln r = (1 − ln2) + (−0.5 + ln2) + 0 + (0.25 − ln1.25)
    assert m["mismatch_kl"] == pytest.approx((0.75 - ln125) / 4)  # 0.131714
    empty = mismatch_metrics(old, sampler, torch.zeros_like(mask))
    assert [v.item() for v in empty.values()] == [0.0, 1.0, 1.0, 0.0]


def test_weighted_clipped_loss_and_gradient_by_hand():
    # π_θ = π_old (s = 1, inside the clip band), A = 1, −1, 2, weights 2, 0.5, 2.5:
    # loss = −Σ w·s·A / N = −(2 − 0.5 + 5) / 3, and d loss / d log π_t = −w_t·A_t / 3.
    logp = _logs(0.5, 0.2, 0.9)[None].requires_grad_()
    adv = torch.tensor([[1.0, -1.0, 2.0]], dtype=D)
    weights = torch.tensor([[2.0, 0.5, 2.5]], dtype=D)
    loss, _ = POLICY_LOSSES["clipped"](
        logp, logp.detach(), adv, torch.ones(1, 3), token_weights_BT=weights
    )
    loss.backward()
    assert loss.item() == pytest.approx(-6.5 / 3)
    torch.testing.assert_close(logp.grad, torch.tensor([[-2.0, 0.5, -5.0]], dtype=D) / 3)
    plain, _ = POLICY_LOSSES["clipped"](logp, logp.detach(), adv, torch.ones(1, 3))
    assert plain.item() == pytest.approx(-(1 - 1 + 2) / 3)  # no weights: the loss as before


# --- split invariance: micro-batches --------------------------------------------------------------


def _batch():
    gen = torch.Generator().manual_seed(0)
    logp = -torch.rand(6, 7, generator=gen, dtype=D)
    old = logp + 0.2 * torch.randn(6, 7, generator=gen, dtype=D)
    sampler = old + 0.3 * torch.randn(6, 7, generator=gen, dtype=D)  # a sampler off π_old
    adv = torch.randn(6, 1, generator=gen, dtype=D).expand(6, 7).clone()
    mask = torch.arange(7) < torch.tensor([[7], [2], [5], [1], [6], [3]])
    return logp, old, sampler, adv, mask


def _corrected(mode: str, old, sampler, mask):
    """The loss's token weights and mask under `mode`, from these rows alone (as `update`)."""
    if mode == "tis":
        weights, _ = truncated_is_weights(old, sampler, mask, cap=1.2)
        return weights, mask
    if mode == "token_mask":  # keeps 13 of the 24 tokens
        return None, rejection_mask(old, sampler, mask, "token", 0.8, 1.25)
    return None, rejection_mask(old, sampler, mask, "sequence", 0.6, 1.5)  # 3 of 6 responses


def _loss_and_grad(name, agg, mode, logp, old, sampler, adv, mask, counts):
    logp = logp.clone().requires_grad_()
    weights, kept = _corrected(mode, old, sampler, mask)
    settings = {"clip_low": 0.2, "clip_high": 0.28, "agg": agg, **counts}
    loss, _ = POLICY_LOSSES[name](logp, old, adv, kept, token_weights_BT=weights, **settings)
    loss.backward()
    return loss.detach(), logp.grad


CASES = [
    (name, mode)
    for name in ("clipped", "is_no_clip", "cispo", "gspo")
    for mode in ("tis", "token_mask", "seq_mask")
    if not (name == "gspo" and mode != "seq_mask")  # refused by the config: one ratio per response
]


@pytest.mark.parametrize("agg", sorted(AGGREGATIONS))
@pytest.mark.parametrize(("name", "mode"), CASES)
def test_corrected_micro_batches_sum_to_the_whole_batch(name, mode, agg):
    logp, old, sampler, adv, mask = _batch()
    _, kept = _corrected(mode, old, sampler, mask)
    # The whole batch's counts of the tokens and responses the correction keeps (`update`).
    counts = {
        "num_tokens": float(kept.sum()), "num_seqs": float((kept.sum(-1) > 0).sum()), "max_len": 8
    }  # fmt: skip
    if mode != "tis":
        assert 0 < kept.sum() < mask.sum()  # the band really drops some tokens here
    whole_loss, whole_grad = _loss_and_grad(name, agg, mode, logp, old, sampler, adv, mask, counts)
    loss, grad = 0.0, torch.zeros_like(logp)
    for rows in ([0, 1], [2], [3, 4, 5]):
        part_loss, part_grad = _loss_and_grad(
            name, agg, mode, logp[rows], old[rows], sampler[rows], adv[rows], mask[rows], counts
        )
        loss, grad[rows] = loss + part_loss, part_grad
    torch.testing.assert_close(loss, whole_loss)
    torch.testing.assert_close(grad, whole_grad)
    assert whole_grad[~kept].abs().max() == 0  # a masked token (and a pad) gets no gradient


# --- the records carry the sampler's log-probs ----------------------------------------------------


def _rollout(sampler_logp: bool = True) -> Rollout:
    pmask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    rmask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]])
    logp = torch.tensor([[-0.1, -0.2, 0.0], [-0.3, 0.0, 0.0], [-0.4, -0.5, -0.6]])
    return Rollout(
        pmask.clone(), pmask, torch.tensor([0, 0, 1]), rmask.clone() + 4, rmask,
        sampler_logp_BR=logp if sampler_logp else None,
    )  # fmt: skip


def test_select_and_join_keep_the_sampler_logprobs():
    ro = _rollout()
    part = ro.select([1, 0])  # padding columns cut: the two rows are 2 wide
    assert isinstance(part, Rollout)
    torch.testing.assert_close(part.sampler_logp_BR, torch.tensor([[-0.3, 0.0], [-0.1, -0.2]]))
    joined = _join([part, ro.select([2])], pad_id=0)
    torch.testing.assert_close(
        joined.sampler_logp_BR, torch.tensor([[-0.3, 0.0, 0.0], [-0.1, -0.2, 0.0],
                                              [-0.4, -0.5, -0.6]])
    )  # fmt: skip
    assert _rollout(sampler_logp=False).select([0]).sampler_logp_BR is None
    assert _join([part, _rollout(sampler_logp=False)], pad_id=0).sampler_logp_BR is None


def test_gspo_takes_the_sequence_mask_only():
    TrainConfig(algo="gspo", rollout_correction="seq_mask")  # one verdict per response: fine
    TrainConfig(algo="grpo", rollout_correction="tis", rollout_correction_cap=5.0)
