"""EfficientAnno adaptive post-processing of pancreatic lesion candidates (numpy in, numpy out)."""
