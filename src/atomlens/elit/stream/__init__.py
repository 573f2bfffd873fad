"""The live loop (ELIT's "stream" step): see :mod:`atomlens.elit.stream.runner`."""

from atomlens.elit.stream.config import StreamConfig
from atomlens.elit.stream.record import FrameRecord
from atomlens.elit.stream.runner import Stream, stream
from atomlens.elit.stream.scoring import ood_score

__all__ = ["FrameRecord", "Stream", "StreamConfig", "ood_score", "stream"]
