"""The VLM runtime (Qwen2-VL architecture, MinerU2.5): ONNX Runtime + numpy + tokenizers, no torch."""
