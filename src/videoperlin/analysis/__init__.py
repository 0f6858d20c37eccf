"""Looking inside networks: conv1 kernels, tuning, curves."""
