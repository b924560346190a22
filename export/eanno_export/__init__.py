"""EfficientAnno export: torch -> ONNX (parity checked), ONNX -> TensorRT plan, Triton repositories."""
