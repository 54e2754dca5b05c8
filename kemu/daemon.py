"""Deprecated: moved to kemu.kernel.processes (backends: import Daemon and find_binary from
kemu.backend). Kept so that plugins written for kemu 0.1 still import."""

import warnings

from kemu.kernel.processes import Daemon, find_binary

__all__ = ["Daemon", "find_binary"]
warnings.warn("kemu.daemon moved to kemu.kernel.processes; backends import from kemu.backend",
              DeprecationWarning, stacklevel=2)
