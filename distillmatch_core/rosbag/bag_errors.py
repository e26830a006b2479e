"""Expected failures of the bag tools; the CLI prints them as one line without a traceback."""


class BagError(Exception):
    """Base class of every expected bag-tool failure."""


class BagOpenError(BagError):
    """The path does not exist, is not a ROS 2 bag, or cannot be read."""


class BagTopicError(BagError):
    """A requested topic is missing or has an unsupported message type (the message lists what the bag has)."""


class EmptyBagError(BagError):
    """The bag, or a requested topic, holds no messages, or no frames could be paired."""


class BagEncodingError(BagError):
    """Images in the bag use an encoding the conversion code does not support."""


class OutputExistsError(BagError):
    """The output path exists and overwriting was not requested."""


class FrameFolderError(BagError):
    """make-bag inputs: missing folder, no images, or folders that cannot be paired."""
