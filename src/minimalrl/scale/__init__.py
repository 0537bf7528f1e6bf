"""Scale-out: torch.distributed helpers and FSDP2 sharding."""
