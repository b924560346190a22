"""EfficientAnno Triton model repository: ensemble, sliding window, segmenter, post-processing; local server."""
