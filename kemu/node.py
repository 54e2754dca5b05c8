"""Deprecated: moved to kemu.kernel.node (backends: import from kemu.backend, topologies from
kemu.topology). Kept so that plugins written for kemu 0.1 still import."""

import warnings

from kemu.kernel.node import *  # noqa: F403
from kemu.kernel.node import UNDERLAY_INTF, ExternalHost, K8sNode, KemuHost, UnderlaySwitch

__all__ = ["UNDERLAY_INTF", "ExternalHost", "K8sNode", "KemuHost", "UnderlaySwitch"]
warnings.warn("kemu.node moved to kemu.kernel.node; backends import from kemu.backend",
              DeprecationWarning, stacklevel=2)
