"""The core loop: config, trainer, experience, the epochs x minibatches update, checkpoints."""
