"""On-call schedules: rotations, layers, overrides, shift swaps."""
