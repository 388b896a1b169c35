"""Plain-Python reference model of mmcore (see SEMANTICS.md and model.py)."""

from .model import OutOfMemory, RefMachine, SegmentationFault

__all__ = ["RefMachine", "SegmentationFault", "OutOfMemory"]
