__version__ = "0.1.0"
# Bumped when the checkpoint layout changes incompatibly.
CHECKPOINT_FORMAT_VERSION = 1
