"""CPU fast paths of the model: packing, the fused vocabulary head, matmul attention,
prepacked linear layers, the allocator setting. Each computes what the plain path does."""
