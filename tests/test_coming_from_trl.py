"""docs/coming-from-trl-verl.md, checked row by row against TRL's own GRPOTrainer (the `bench`
extra): one batch fed to TRL's advantage and loss code and to minimalrl's gives the same
advantages, the same loss and the same gradient.

TRL's side runs its real code: `GRPOTrainer._generate_and_score_completions` (with a
`rollout_func`, TRL's hook for one's own generation, returning fixed responses, and a reward
function returning fixed rewards) makes the advantages, and `GRPOTrainer._compute_loss` the loss
on the tiny model. minimalrl's side is the trainer's own path: `TrainConfig(...).effective()`,
`build_experience` for the advantages, the policy's forward for the log-probs, and the
algorithm's loss with the aggregation and KL term as the update applies them. π_old and the
reference are set apart from the policy in the batch, so the clipping and the KL term act.
"""

from __future__ import annotations

import pytest
import torch

from minimalrl.algorithms import aggregate, kl_penalty
from minimalrl.config import TrainConfig
from minimalrl.experience import build_experience
from minimalrl.model.logprobs import TokenBatch, own_forward_logprobs
from minimalrl.rollout.base import Rollout

P, G, R = 3, 4, 5  # prompts, responses per prompt, longest response
REWARDS = [1.0, 0.0, 0.0, 0.0,  0.5, 0.5, 0.5, 0.5,  1.0, 0.0, 1.0, 0.25]  # fmt: skip
LENGTHS = [5, 2, 4, 3, 1, 5, 3, 2, 4, 4, 2, 5]  # tokens of each response

# The page's rows: TRL's GRPOConfig settings -> the minimalrl settings that compute the same loss.
ROWS = {
    "default (loss_type=dapo)": ({}, {"algo": "grpo", "advantage_eps": 1e-4}),
    "loss_type=grpo": (
        {"loss_type": "grpo"},
        {"algo": "grpo", "loss_agg": "seq_mean_token_mean", "advantage_eps": 1e-4},
    ),
    "loss_type=bnpo": ({"loss_type": "bnpo"}, {"algo": "grpo", "advantage_eps": 1e-4}),
    "loss_type=dr_grpo, scale_rewards=none": (
        {"loss_type": "dr_grpo", "scale_rewards": "none"}, {"algo": "dr_grpo"},
    ),
    "scale_rewards=batch": (
        {"scale_rewards": "batch"}, {"algo": "lite_ppo", "advantage_eps": 1e-4},
    ),
    "scale_rewards=none": (
        {"scale_rewards": "none"}, {"algo": "grpo", "advantage_scale": "none"},
    ),
    "epsilon, epsilon_high (clip-higher)": (
        {"epsilon": 0.1, "epsilon_high": 0.28},
        {"algo": "grpo", "clip_low": 0.1, "clip_high": 0.28, "advantage_eps": 1e-4},
    ),
    "importance_sampling_level=sequence (GSPO)": (
        {"importance_sampling_level": "sequence", "loss_type": "grpo", "epsilon": 3e-4,
         "epsilon_high": 4e-4},
        {"algo": "gspo", "advantage_eps": 1e-4},
    ),
    "loss_type=cispo": (
        {"loss_type": "cispo", "epsilon_high": 5.0}, {"algo": "cispo", "advantage_eps": 1e-4},
    ),
    "beta, use_bias_correction_kl=False (KL to the reference, k3)": (
        {"beta": 0.04, "use_bias_correction_kl": False},
        {"algo": "grpo", "kl_coef": 0.04, "advantage_eps": 1e-4},
    ),
}  # fmt: skip


def _batch(vocab: int) -> tuple[list[list[int]], list[list[int]]]:
    """P prompts of unequal length, G responses each (token ids that are no special token)."""
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(5, vocab, (n,), generator=g).tolist() for n in (3, 5, 4)]
    responses = [torch.randint(5, vocab, (n,), generator=g).tolist() for n in LENGTHS]
    return prompts, responses


def _trl_side(model, tokenizer, trl_settings, prompts, responses, tmp_path):
    """TRL's advantages, the batch it builds, its loss and gradient, with π_old and the reference
    set in the batch."""
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    texts = [f"p{i}" for i in range(P)]
    by_text = dict(zip(texts, prompts))

    def rollout(batch_prompts, trainer):
        j = {}  # the k-th time a prompt comes: its k-th response
        out_p, out_c = [], []
        for text in batch_prompts:
            k = j[text] = j.get(text, -1) + 1
            out_p.append(by_text[text])
            out_c.append(responses[texts.index(text) * G + k])
        return {"prompt_ids": out_p, "completion_ids": out_c, "logprobs": None}

    def reward(prompts, completions, completion_ids, **kwargs):
        return [REWARDS[responses.index(list(ids))] for ids in completion_ids]

    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "trl"), per_device_train_batch_size=P * G, num_generations=G,
        max_completion_length=R, use_cpu=True, report_to="none", bf16=False, seed=0,
        **trl_settings,
    )  # fmt: skip
    data = datasets.Dataset.from_dict({"prompt": texts})
    trainer = trl.GRPOTrainer(
        model=model, reward_funcs=reward, args=args, train_dataset=data,
        processing_class=tokenizer, rollout_func=rollout,
    )  # fmt: skip
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    inputs = [{"prompt": t} for t in texts for _ in range(G)]
    batch = trainer._generate_and_score_completions(inputs)
    mask = batch["completion_mask"].float()
    with torch.no_grad():
        logp = _trl_logps(trainer, model, batch)
    g = torch.Generator().manual_seed(1)
    batch["old_per_token_logps"] = logp + 0.3 * torch.randn(logp.shape, generator=g) * mask
    batch["ref_per_token_logps"] = logp + 0.5 * torch.randn(logp.shape, generator=g) * mask
    model.zero_grad()
    loss = trainer._compute_loss(model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return batch, loss.detach(), grads


def _trl_logps(trainer, model, batch):
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    logp, _, _ = trainer._get_per_token_logps_and_entropies(
        model, ids, attention, batch["completion_ids"].size(1)
    )
    return logp


def _minimalrl_side(model, settings, batch):
    """minimalrl's advantages, loss and gradient on the same tokens, π_old and reference."""
    cfg = TrainConfig(samples_per_prompt=G, max_new_tokens=R, **settings).effective()
    alg = cfg.algorithm()
    prompt_rows = torch.arange(0, P * G, G)
    ro = Rollout(
        prompt_ids_UP=batch["prompt_ids"][prompt_rows],  # left-padded, as TRL pads prompts
        prompt_mask_UP=batch["prompt_mask"][prompt_rows],
        prompt_index_B=torch.arange(P).repeat_interleave(G),
        response_ids_BR=batch["completion_ids"],
        response_mask_BR=batch["completion_mask"],
    )
    rewards_B = torch.tensor(REWARDS)
    exp = build_experience(
        alg, ro, rewards_B, rewards_B >= 1.0, group_size=G, band=(cfg.band_lo, cfg.band_hi),
        ref_logp_BR=None, values_BR=None, gamma=cfg.gamma, lam=cfg.lam,
        pair_rng=torch.Generator(), pair_reference=cfg.dpo_reference, filtered=cfg.filtered,
        advantage_eps=cfg.advantage_eps,
    )  # fmt: skip
    mask = ro.response_mask_BR.float()
    model.zero_grad()
    logp, _ = own_forward_logprobs(model, TokenBatch(**{k: getattr(ro, k) for k in (
        "prompt_ids_UP", "prompt_mask_UP", "prompt_index_B", "response_ids_BR",
        "response_mask_BR")}))  # fmt: skip
    norm = {"num_tokens": float(mask.sum()), "num_seqs": float(P * G),
            "max_len": cfg.loss_agg_max_len or cfg.max_new_tokens}  # fmt: skip
    loss, _ = alg.loss(
        logp, batch["old_per_token_logps"], exp.advantages_BR, mask, clip_low=cfg.clip_low,
        clip_high=cfg.clip_high, dual_clip=cfg.dual_clip, agg=cfg.loss_agg, **norm,
    )  # fmt: skip
    if cfg.kl_coef > 0:
        kl = kl_penalty(logp, batch["ref_per_token_logps"], cfg.kl_estimator)
        loss = loss + cfg.kl_coef * aggregate(kl, mask, cfg.loss_agg, **norm)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return exp.advantages_BR[:, 0], loss.detach(), grads


@pytest.mark.parametrize("row", list(ROWS))
def test_each_row_of_the_page_gives_trls_advantages_loss_and_gradient(
    row, tiny_model_dir, tmp_path
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trl_settings, settings = ROWS[row]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts, responses = _batch(len(tokenizer))
    batch, trl_loss, trl_grads = _trl_side(
        model, tokenizer, trl_settings, prompts, responses, tmp_path
    )
    assert batch["completion_mask"].sum(-1).tolist() == LENGTHS  # TRL kept every response whole
    advantages, loss, grads = _minimalrl_side(model, settings, batch)
    # float32 throughout; the advantages are the same few operations in the same order
    torch.testing.assert_close(advantages, batch["advantages"], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(loss, trl_loss, rtol=1e-5, atol=1e-7)
    assert grads.keys() == trl_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, trl_grads[name], rtol=1e-4, atol=1e-7, msg=name)
    assert any(float(g.abs().max()) > 1e-4 for g in grads.values())  # a gradient, not zeros


def test_advantage_eps_is_the_setting_trl_fixes_at_1e_4():
    """A group whose rewards barely differ: its std-scaled advantage depends on eps, so TRL's
    1e-4 needs `advantage_eps=1e-4` (the default 1e-6 is PAPER.md's and verl's)."""
    from minimalrl.algorithms import filter_and_advantages

    rewards_PG = torch.tensor([[1.0, 1.0, 1.0, 1.0 + 1e-4]])
    alg = TrainConfig().algorithm()
    std = float(rewards_PG.std())
    for eps in (1e-6, 1e-4):
        adv_PG, _ = filter_and_advantages(alg.keep, alg.advantage, rewards_PG, rewards_PG >= 1,
                                          eps=eps)  # fmt: skip
        expected = (rewards_PG - rewards_PG.mean()) / (std + eps)
        torch.testing.assert_close(adv_PG, expected)
    assert TrainConfig().advantage_eps == 1e-6
    with pytest.raises(ValueError, match="advantage_eps must be > 0"):
        TrainConfig(advantage_eps=0.0)


# Where the defaults differ (the page says so): the same batch, TRL's settings and minimalrl's
# defaults for them, and what then differs.
DIFFERS = {
    "TRL's grpo is a mean of per-sequence means; minimalrl's grpo a token mean": (
        {"loss_type": "grpo"}, {"algo": "grpo", "advantage_eps": 1e-4}, "loss",
    ),
    "the advantage's eps: 1e-4 in TRL, 1e-6 here": ({}, {"algo": "grpo"}, "advantages"),
    "TRL's beta multiplies the KL term by the ratio (use_bias_correction_kl=True)": (
        {"beta": 0.04}, {"algo": "grpo", "kl_coef": 0.04, "advantage_eps": 1e-4}, "gradient",
    ),
}  # fmt: skip


@pytest.mark.parametrize("row", list(DIFFERS))
def test_where_the_defaults_differ_they_do(row, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trl_settings, settings, what = DIFFERS[row]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts, responses = _batch(len(tokenizer))
    batch, trl_loss, trl_grads = _trl_side(
        model, tokenizer, trl_settings, prompts, responses, tmp_path
    )
    advantages, loss, grads = _minimalrl_side(model, settings, batch)
    got, want = {
        "advantages": (advantages, batch["advantages"]),
        "loss": (loss, trl_loss),
        "gradient": (torch.cat([g.flatten() for g in grads.values()]),
                     torch.cat([trl_grads[n].flatten() for n in grads])),
    }[what]  # fmt: skip
    assert not torch.allclose(got, want, rtol=1e-5, atol=1e-7), (got, want)
