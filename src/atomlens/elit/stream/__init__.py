"""The live loop (ELIT's "stream" step): see :mod:`atomlens.elit.stream.runner`."""

from atomlens.elit.stream.config import StreamConfig
from atomlens.elit.stream.record import FrameRecord
from atomlens.elit.stream.runner import Stream, ood_score, stream

__all__ = ["FrameRecord", "Stream", "StreamConfig", "ood_score", "stream"]
