"""The training configuration: one typed dataclass, a docstring per field, validated on creation.

A run is described by this record alone: YAML files and `--set key=value` only fill its fields.
It sits below everything that reads it (the policy, eval, the loop, the commands) and above the
registries whose names it checks (algorithms, reward functions, rollout backends, trackers).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, fields
from pathlib import Path

from minimalrl.algorithms.losses import AGGREGATIONS

if typing.TYPE_CHECKING:
    from minimalrl.algorithms import Algorithm


class ConfigError(ValueError):
    """A configuration that cannot run: unknown key, wrong type, value out of range."""


@dataclass
class TrainConfig:
    """Everything that determines a training run (the paper's defaults where it gives one)."""

    # --- what is trained, on what
    algo: str = "grpo"
    """Algorithm name from the registry (`minimalrl algorithms` lists them)."""
    model: str = "smollm2-135m-instruct"
    """The embedded default model, a local transformers folder, or a hub id."""
    train_data: str = "arithmetic:digits=2,min_digits=2,ops=+-*,mul_digits=1,n=2000"
    """Training prompts: a benchmark name, an `arithmetic:...` spec, or a path: a .jsonl or .csv
    file, or (with the `data` extra) a .parquet/.arrow file, a folder of data files or a
    `save_to_disk` folder; nothing is downloaded. The default:
    sums and differences of two-digit numbers, and products of a two-digit by a one-digit number
    (`What is 47 * 6?`)."""
    eval_data: str = "arithmetic:digits=2,min_digits=2,ops=+-*,mul_digits=1,n=200,split=test"
    """Held-out prompts for greedy evaluation ("" = none): 200 problems of the training kind that
    the training set does not hold, so a rise of 15 points is far outside chance."""
    system_prompt: str | None = None
    """Replaces the chat template's default system prompt when set (and a conversational row's
    own system turn)."""
    question_field: str = ""
    """The column (or JSON field) of the question in train_data and eval_data files and datasets
    ("" = the first of question, problem, prompt, input present). A conversational column (TRL's
    `prompt`: a list of role/content turns) gives its user turn; its system turn, if any, replaces
    the chat template's default unless system_prompt is set. Built-in names ignore it."""
    answer_field: str = ""
    """The column of the gold answer ("" = the first of answer, final_answer, solution present;
    text with a \\boxed{} or `#### N` gives what is in the last box, or after the ####)."""
    train_split: str = ""
    """The split of a dataset folder that train_data reads ("" = its only split, else "train")."""
    eval_split: str = ""
    """The split of a dataset folder that eval_data reads ("" = its only split, else "test")."""

    # --- rollouts
    iterations: int = 18
    """Number of iterations (rollout batch + updates)."""
    prompts_per_iteration: int = 16
    """M: prompts sampled per iteration."""
    samples_per_prompt: int = 4
    """n: responses sampled per prompt."""
    max_new_tokens: int = 32
    """Generation length limit (the default run's 32 also rewards answering before it)."""
    temperature: float = 0.7
    """Sampling temperature of rollouts (the paper: 1.0). The default model at 1.0 rambles: on
    the default task 3.4% of its samples are right, at 0.7 7.3% (pass@4 10% vs 21%), which
    doubles the groups with a learning signal. Log-probs are taken at the same temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass."""

    # --- reward
    reward: str = "math"
    """The reward function, (responses, problems) -> (rewards, correct): "math" (the math
    verifier, below), "random" (the control: a coin that ignores correctness, below), or your own
    as `package.module:function` (docs/how-to/reward.md). It may take any of correct_reward,
    wrong_reward, fallback_last_number, random_reward_p and seed by keyword."""
    correct_reward: float = 1.0
    """Reward of a right answer."""
    wrong_reward: float = -1.0
    """Reward of a wrong answer (−1 in the paper's analysis; its code used 0)."""
    fallback_last_number: bool = True
    """Which responses can be right. Both settings take the last complete \\boxed{} / \\fbox{},
    else the last `#### N` line, else the phrase after the last "the answer is" / "answer:".
    false: a response with none of these is wrong. true (default, also `evaluate`'s): it is
    judged by its last plain number (`1,000`, `-3.5`, `.5`, `3/4`; digits only, so the `4` of an
    unboxed `$\\frac{3}{4}$`). The paper's math-verify reward also reads unboxed answers (the
    last number or LaTeX expression), so true is the closer one; false is stricter than the
    paper. On also because within the CPU default's 32 new tokens the default model rarely
    reaches a \\boxed{} (every group all wrong, no signal)."""
    random_reward_p: float = 0.5
    """With `reward: random`: the probability of correct_reward, whatever the response says (a
    coin fixed by seed, problem and response text). `minimalrl compare` sets it to the initial
    model's accuracy, so the control's mean reward is the real reward's at the start."""

    # --- updates
    epochs: int = 1
    """E: passes over the rollout batch per iteration."""
    minibatch_size: int = 64
    """Responses per optimizer step (the kept samples are split into minibatches of this size)."""
    micro_batch_size: int = 16
    """Responses per forward/backward; gradients accumulate up to a minibatch."""
    lr: float = 2e-5
    """Policy learning rate (AdamW)."""
    lr_schedule: str = "constant"
    """"constant", "linear" or "cosine" decay to 0 after warmup, over the iterations."""
    warmup_iterations: int = 0
    """Linear warmup, in iterations (the schedule advances once per iteration, as in verl)."""
    weight_decay: float = 0.0
    """AdamW weight decay of the policy (the paper's code, through verl: 0.01)."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas (policy and critic)."""
    adam_eps: float = 1e-8
    """AdamW ε (policy and critic; PyTorch's and the paper's code's 1e-8)."""
    grad_clip: float = 1.0
    """Max gradient norm (0 = off)."""
    loss_agg: str = "token_mean"
    """Loss aggregation: "token_mean", "seq_mean_token_mean", "seq_mean_token_sum" or
    "seq_mean_token_sum_norm" (Dr. GRPO: token sums / (sequences × L))."""
    loss_agg_max_len: int = 0
    """L of "seq_mean_token_sum_norm" (0 = max_new_tokens, Dr. GRPO's choice)."""
    clip_low: float = 0.2
    """ε_low of the clipped ratio (0.2, the paper and its code); 1 = no lower bound (1 − ε = 0)."""
    clip_high: float = 0.2
    """ε_high of the clipped ratio (0.2, the paper and its code)."""
    dual_clip: float | None = None
    """Dual-clip constant c for A < 0; None = off (PAPER.md's minimal loss). The paper's code
    always applies c = 3."""
    kl_coef: float = 0.0
    """β of the KL penalty to the initial model in the loss (0 = off; 0.001 in released scripts)."""
    kl_estimator: str = "k3"
    """KL estimator for the penalty: "k1", "k2" or "k3" (exp(q) − q − 1, q = log π_ref − log π_θ,
    q clamped to ±20 against overflow). The paper's code (verl's low_var_kl) also clamps the k3
    value to [−10, 10]; we do not, so the tokens that strayed furthest keep their pull back."""
    entropy_coef: float = 0.0
    """Entropy bonus coefficient (0 = off)."""
    band_lo: float = 0.2
    """reinforce_band: lowest kept fraction of correct samples (inclusive)."""
    band_hi: float = 0.8
    """reinforce_band: highest kept fraction of correct samples (inclusive). The default band
    [0.2, 0.8] keeps prompts of middling difficulty: with 4 samples the mixed groups, as
    Reinforce-Rej; with 8 it also drops groups of 1 or 7 correct. A band that keeps every
    prompt (band_lo <= 0 and band_hi >= 1) is refused: that is plain `reinforce`."""

    # --- algorithm axes: each replaces one choice of the algorithm's record (None = keep it)
    advantage_baseline: str | None = None
    """Advantage baseline: "none", "group_mean", "leave_one_out" (RLOO: mean of the other
    responses) or "batch_mean"; None = the algorithm's own."""
    advantage_scale: str | None = None
    """Advantage scale: "none", "group_std" (GRPO) or "batch_std" (unbiased std of the batch's
    rewards); None = the algorithm's own."""
    advantage_eps: float = 1e-6
    """eps of a std-scaled advantage, (r − baseline) / (std + eps) (PAPER.md's and verl's 1e-6;
    TRL's 1e-4). An all-equal group gets 0 whatever it is; it bounds the advantage of a
    group whose rewards barely differ."""
    policy_loss: str | None = None
    """The loss: "clipped", "is_no_clip", "cispo" or "gspo"; None = the algorithm's own."""
    filtered: str = "drop"
    """Responses the algorithm's filter rejects: "drop" them (PAPER.md) or "zero": keep them with
    advantage 0 (the paper's released code), so they count in the loss's denominator and the
    number of optimizer steps does not depend on how many prompts were filtered."""
    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: sample more prompts until the batch holds prompts_per_iteration
    prompts the filter keeps (at most dynamic_sampling_rounds rounds; the metrics say how many
    were sampled). Needs an algorithm whose filter rejects some prompts."""
    dynamic_sampling_rounds: int = 3
    """Most sampling rounds of an iteration under dynamic sampling (the first included); a batch
    still short after them trains on what it has."""

    # --- rollout correction: the sampler is not π_old (docs/concepts/rollout-correction.md)
    rollout_correction: str = "none"
    """What the update does about the gap between the sampler and π_old, r = π_old/π_sampler per
    sampled token (the mismatch metrics are logged whatever this says): "none"; "tis"
    (truncated importance sampling: each token's policy loss × min(r, C)); "token_mask" (tokens
    with r outside [C_min, C_max] leave the update); "seq_mask" (responses whose ∏_t r is
    outside it leave the update). The masks need π_old before the update, so they cost a π_old
    forward where one optimizer step would otherwise reuse the update's own."""
    rollout_correction_cap: float = 2.0
    """C of "tis" (>= 1; 2 is verl's default)."""
    rollout_correction_min: float = 0.5
    """C_min of the masks (0 <= C_min < 1)."""
    rollout_correction_max: float = 2.0
    """C_max of the masks (> 1)."""

    # --- PPO
    critic_lr: float = 2e-5
    """Critic learning rate."""
    critic_weight_decay: float = 0.01
    """AdamW weight decay of the critic (the paper's code: 0.01; before this setting existed the
    critic had PyTorch's default, also 0.01)."""
    critic_lr_schedule: str = "constant"
    """The critic's lr schedule, as `lr_schedule` (with the same `warmup_iterations`)."""
    gamma: float = 1.0
    """GAE discount."""
    lam: float = 1.0
    """GAE λ."""
    value_clip: float = 0.2
    """ε_v of the clipped value loss (TRL's and OpenRLHF's 0.2; the paper's code, verl, 0.5)."""

    # --- DPO
    dpo_beta: float = 0.1
    """β of the DPO loss."""
    dpo_reference: str = "iteration"
    """DPO reference: "iteration" (policy at the start of the iteration) or "initial"."""

    # --- bookkeeping
    seed: int = 0
    """Seed of data order, sampling and initialisation."""
    deterministic: bool = True
    """PyTorch's deterministic kernels (`torch.use_deterministic_algorithms`, warning where an op
    has none). Without them the CPU backward of indexing (`index_put_` with accumulation) adds
    with atomic float adds from several threads once a tensor has 32768 elements or more, so
    repeated indices (a prompt's KV cache read by the packed rows of its n responses) sum in
    thread order: two identical backward passes of the default model differ in the last bits
    (265 of 272 gradient tensors), and two runs of one seed drifted apart from the third
    iteration, then in their samples (issue 19: final held-out accuracy 30% in one, 26% in the
    other). Cost: docs/how-to/resume.md."""
    eval_every: int = 18
    """Evaluate every this many iterations (and before the first and after the last); 0 = off.
    The default evaluates before and after only: 200 problems take about 33 s here."""
    eval_max_new_tokens: int = 0
    """Generation limit for evaluation (0 = same as max_new_tokens)."""
    save_every: int = 9
    """Checkpoint every this many iterations (and at the end); 0 = only at the end."""
    keep_checkpoints: int = 1
    """How many periodic checkpoints to keep."""
    keep_checkpoint_every: int = 0
    """Also keep every checkpoint at a multiple of this many iterations (0 = none), for scoring
    along the run afterwards (`minimalrl compare --score-every`); changes nothing a run computes."""
    threads: int = 0
    """torch threads (0 = all cores)."""
    keep_freed_memory: bool = True
    """On CPU (Linux, glibc): malloc keeps freed memory for reuse instead of returning it to the
    kernel, so activations are not page-faulted afresh every step (faster updates:
    docs/measurements.md, "Speed"). Process-wide; memory stays near its peak between phases."""
    device: str = "cpu"
    """"cpu", "cuda", or "auto" (CUDA when present). Under torchrun each rank takes its GPU."""
    precision: str = "fp32"
    """"fp32", or "bf16" (autocast: bfloat16 matmuls, float32 weights and log-probs)."""
    rollout_precision: str = "fp32"
    """"fp32", or "bf16": sample from a bfloat16 cast of the policy (made each iteration, freed
    after), as bf16 vLLM rollouts do; faster generation on a CPU with avx512_bf16
    (docs/measurements.md, "Speed"). Log-probs, losses and the update follow `precision`, so
    π_old is the policy as the update computes it and the samples come from a slightly
    different distribution (the usual engine/trainer mismatch)."""
    rollout_backend: str = "hf"
    """What samples the rollouts, for training and evaluation alike: "hf" (transformers with a
    KV cache, on the policy module itself) or "vllm" (a vLLM engine in this process, given the
    policy's weights after every update; `bash scripts/setup.sh --vllm` installs it).
    `minimalrl.rollout.BACKENDS` lists them."""
    rollout_record: str = ""
    """A file to append every rollout to (token ids and sampler log-probs of each generate
    call, training and evaluation): what `rollout_replay` reads ("" = none). Resumes with the
    run. `minimalrl.rollout.replay`."""
    rollout_replay: str = ""
    """A `rollout_record` file whose responses stand in for sampling ("" = sample): the same
    tokens on any machine, so the weights trained on them differ from the recorded run's by
    rounding only (not at all on its machine). A call it lacks (another config, seed, data or
    model) stops the run, named. What the run logs of its samples is the recorded run's."""
    vllm_kv_cache_gib: int = 1
    """vllm on CPU: whole GiB of KV cache the engine allocates up front (`VLLM_CPU_KVCACHE_SPACE`,
    an integer; 1 GiB holds ~23,000 tokens of the default model)."""
    vllm_gpu_memory_fraction: float = 0.3
    """vllm on CUDA: the fraction of GPU memory the engine takes; the rest is training's."""
    vllm_max_model_len: int = 0
    """vllm: longest prompt + response the engine serves (0: the model's maximum); a smaller
    value lets a smaller KV cache start."""
    track_kl_to_init: bool = True
    """Measure the kl_to_init curve (one reference forward per iteration) even without a KL term."""

    # --- experiment trackers (metrics.jsonl is the record; these mirror it)
    report_to: tuple[str, ...] = ("tensorboard",)
    """Where every metrics record also goes, at its iteration as the step, with this config:
    any of "tensorboard" (OUTPUT/tensorboard), "wandb", "trackio", "mlflow" (each an extra:
    `pip install 'minimalrl[wandb]'`); "none" or [] = metrics.jsonl alone. On the command line
    `--set report_to=wandb,mlflow` or `[wandb,mlflow]`. Each reads its own environment for a
    server (`WANDB_MODE`, `TRACKIO_DIR`, `MLFLOW_TRACKING_URI`...). A tracker that fails warns
    once and the run goes on."""
    run_name: str = ""
    """The run's name in the trackers ("" = the output folder's name)."""
    run_group: str = ""
    """A group for the trackers ("" = none); `minimalrl compare` sets it to the run's name
    (`grpo`, `reinforce_rej:filtered=drop`) so a tracker's table groups a grid's seeds."""
    tracker_project: str = "minimalrl"
    """The W&B and Trackio project, the MLflow experiment."""

    # --- memory and scale
    lora_rank: int = 0
    """LoRA rank through peft (0 = full fine-tuning)."""
    lora_alpha: float = 16.0
    """LoRA scaling α."""
    lora_target_modules: str = "all-linear"
    """Modules that get adapters: "all-linear" or a comma list such as "q_proj,v_proj"."""
    recompute_old_logprobs: bool = False
    """Always score rollouts with a separate forward for π_old. By default that forward is skipped
    when the update is a single optimizer step (epochs 1, one minibatch): π_old is then the
    update's own forward (TRL and verl do the same); the result is the same up to rounding."""
    fsdp: bool = False
    """Shard the policy (and reference copy, critic) over the torchrun ranks with FSDP2
    (`fully_shard`): each rank holds 1/world of weights, gradients and optimizer state.
    Checkpoints stay full `save_pretrained` folders. Not with LoRA yet."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, ~30% more compute)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the field of any value out of range."""
        from minimalrl.algorithms import get_algorithm
        from minimalrl.reward import RewardError, load_reward_fn
        from minimalrl.rollout import BACKENDS

        try:
            get_algorithm(self.algo)  # an unknown name: refused here, by name
        except (KeyError, ValueError) as err:
            raise ConfigError(f"algo: {err}") from None
        _check_numbers(self)
        self._check_bound(_AT_LEAST_ONE, 1, ">=")
        _check_axes(self)
        alg = self.algorithm()  # with the axes set in this config
        if self.samples_per_prompt < alg.min_group_size:
            raise ConfigError(
                f"samples_per_prompt = {self.samples_per_prompt}: {self.algo} compares responses "
                f"within a prompt's group and needs at least {alg.min_group_size}"
            )
        self._check_combinations()
        self._check_bound(_POSITIVE, 0, ">")
        self._check_clips_and_band()
        self._check_bound(_NON_NEGATIVE, 0, ">=")
        if self.correct_reward <= self.wrong_reward:
            raise ConfigError("correct_reward must be greater than wrong_reward")
        for name, allowed in {**_CHOICES, "rollout_backend": tuple(BACKENDS)}.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        try:
            load_reward_fn(self.reward)  # a path that does not import stops the run here
        except RewardError as err:
            raise ConfigError(str(err)) from None
        self._check_trackers()

    def _check_trackers(self) -> None:
        from minimalrl.trackers import missing_tracker

        if isinstance(self.report_to, str | list):  # (from Python: a name, or a list of them)
            names = [] if self.report_to in ("none", "") else [self.report_to]
            self.report_to = tuple(names if isinstance(self.report_to, str) else self.report_to)
        for name in self.report_to:
            problem = missing_tracker(name)
            if problem:
                raise ConfigError(problem)

    def _check_bound(self, names: tuple[str, ...], bound: float, op: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not (value >= bound if op == ">=" else value > bound):
                raise ConfigError(f"{name} must be {op} {bound}, got {value}")

    def _check_combinations(self) -> None:
        if self.rollout_record and self.rollout_replay:
            raise ConfigError("rollout_record and rollout_replay: one or the other")
        if self.rollout_replay and not Path(self.rollout_replay).is_file():
            raise ConfigError(f"rollout_replay: {self.rollout_replay}: no such file")
        if self.fsdp and self.rollout_precision != "fp32":
            raise ConfigError(
                "rollout_precision: only fp32 with fsdp (samples from gathered shards)"
            )
        if self.fsdp and self.lora_rank:
            raise ConfigError(
                "fsdp: not supported with LoRA (lora_rank > 0) yet; use one or the other"
            )
        if self.lora_rank < 0 or self.lora_alpha <= 0:
            raise ConfigError(
                f"lora_rank must be >= 0 and lora_alpha > 0, got {self.lora_rank}, "
                f"{self.lora_alpha}"
            )

    def _check_clips_and_band(self) -> None:
        if self.clip_low > 1:
            raise ConfigError(f"clip_low must be <= 1 (1: no lower bound), got {self.clip_low}")
        if self.dual_clip is not None and self.dual_clip <= 1:
            raise ConfigError(f"dual_clip must be > 1 (or None), got {self.dual_clip}")
        if not 0 <= self.band_lo <= self.band_hi <= 1:
            raise ConfigError(
                f"need 0 <= band_lo <= band_hi <= 1, got {self.band_lo}, {self.band_hi}"
            )
        if self.algo == "reinforce_band" and self.band_lo <= 0 and self.band_hi >= 1:
            raise ConfigError(
                f"band_lo = {self.band_lo}, band_hi = {self.band_hi}: this band keeps every "
                "prompt, which is plain reinforce; narrow it (e.g. band_lo=0.2, band_hi=0.8)"
            )
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 < self.vllm_gpu_memory_fraction < 1:
            raise ConfigError(
                f"vllm_gpu_memory_fraction must be in (0, 1), got {self.vllm_gpu_memory_fraction}"
            )
        if not 0 <= self.random_reward_p <= 1:
            raise ConfigError(f"random_reward_p must be in [0, 1], got {self.random_reward_p}")

    def algorithm(self) -> Algorithm:
        """The algorithm this config trains: its registry record, with the axes set here."""
        from minimalrl.algorithms import get_algorithm, with_axes

        alg = get_algorithm(self.algo)
        axes = (self.advantage_baseline, self.advantage_scale, self.policy_loss)
        return with_axes(alg, baseline=axes[0], scale=axes[1], loss=axes[2])

    def effective(self) -> TrainConfig:
        """The config that runs: the algorithm's presets (`minimalrl algorithms`, column
        "settings") fill the fields this config leaves at their defaults; a value set here wins."""
        presets = _preset_changes(self)
        return self.replace(**presets) if presets else self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes: object) -> TrainConfig:
        return dataclasses.replace(self, **changes)


# The bounds of numeric fields (each also finite: `_check_numbers`), and fields of a few values.
_AT_LEAST_ONE = (
    "iterations", "prompts_per_iteration", "samples_per_prompt", "max_new_tokens", "epochs",
    "minibatch_size", "micro_batch_size", "keep_checkpoints", "vllm_kv_cache_gib",
)  # fmt: skip
_POSITIVE = (
    "lr", "critic_lr", "dpo_beta", "adam_eps", "advantage_eps", "clip_low", "clip_high",
    "value_clip",
)  # fmt: skip
_NON_NEGATIVE = (
    "temperature", "kl_coef", "entropy_coef", "weight_decay", "critic_weight_decay", "grad_clip",
    "warmup_iterations", "eval_every", "save_every", "keep_checkpoint_every", "threads",
    "eval_max_new_tokens", "vllm_max_model_len",
)  # fmt: skip
_CHOICES = {
    "lr_schedule": ("constant", "linear", "cosine"),
    "critic_lr_schedule": ("constant", "linear", "cosine"),
    "loss_agg": tuple(AGGREGATIONS),
    "filtered": ("drop", "zero"),
    "kl_estimator": ("k1", "k2", "k3"),
    "dpo_reference": ("iteration", "initial"),
    "device": ("cpu", "cuda", "auto"),
    "precision": ("fp32", "bf16"),
    "rollout_precision": ("fp32", "bf16"),
}


def _preset_changes(cfg: TrainConfig) -> dict[str, object]:
    from minimalrl.algorithms import get_algorithm, preset_changes

    defaults = {f.name: f.default for f in fields(TrainConfig)}
    return preset_changes(get_algorithm(cfg.algo), dataclasses.asdict(cfg), defaults)


def _check_axes(cfg: TrainConfig) -> None:
    """The axes' values, and the combinations that make no sense, refused by name."""
    from minimalrl.algorithms import check_axes, get_algorithm

    try:
        check_axes(cfg.algo, get_algorithm(cfg.algo), {**cfg.to_dict(), **_preset_changes(cfg)})
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check_numbers(cfg: TrainConfig) -> None:
    """Every numeric field holds finite numbers (NaN passes every `<` test); adam_betas is a pair
    in [0, 1)."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        items = value if isinstance(value, tuple | list) else (value,)
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{f.name} must be a finite number, got {value}")
    betas = cfg.adam_betas
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ConfigError(f"adam_betas must be two numbers such as 0.9,0.999, got {betas}")
    if not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"adam_betas must each be in [0, 1), got {betas}")
