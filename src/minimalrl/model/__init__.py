"""The model, below the rollout backends and the policy seam: token ids -> log-probs (`logprobs`),
loading a model and its tokenizer, LoRA (`loading`), the CPU fast paths (`fast/`)."""
