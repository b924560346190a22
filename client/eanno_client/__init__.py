"""EfficientAnno workstation client: annotate CT volumes over gRPC and write labels for review (no torch)."""
