"""Real video: decoding and encoding with PyAV, datasets, sampling and transforms."""
