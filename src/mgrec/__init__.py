"""mgrec: micro-gesture online recognition (temporal detection on clip features)."""

__version__ = "0.1.0"
