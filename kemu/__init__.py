"""kemu: a Kubernetes network emulator on Mininet."""

__version__ = "0.1.0"
