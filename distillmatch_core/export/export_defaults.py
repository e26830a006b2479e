"""Export defaults, import-free so the CLI can show them in --help without loading torch."""

# Opset 17: the first opset with a fused LayerNormalization node, which TensorRT's parser maps to
# its normalization layer (kept in fp32 there) instead of a Reduce/Pow/Sqrt chain that overflows in
# fp16; and the highest opset every TensorRT we target parses (8.5 on JetPack 5.1 reads up to 17;
# 8.6 / 10.x on JetPack 6 and desktops read it too). ONNX Runtime >= 1.14 runs it on all providers.
DEFAULT_OPSET = 17
# 1024 match slots: TensorRT 8.x's TopK accepts k <= 1024 (10.x: 3840), and 1024 final matches is
# plenty for a homography or pose; the slots cost fine-stage compute whether valid or not.
DEFAULT_MAX_MATCHES = 1024
DEFAULT_INPUT_SIZE = (480, 640)  # (H, W): the robot cameras' 640x480
