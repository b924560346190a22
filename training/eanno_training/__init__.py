"""EfficientAnno 3D TransUNet, synthetic phantoms, training, sliding-window prediction and evaluation."""
