"""dreamvid: DeepDream for videos, frame sequences, images and endless zoom loops."""

__version__ = "0.1.0"
