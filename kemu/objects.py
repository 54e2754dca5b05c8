"""Deprecated: moved to kemu.scenario.objects (topologies: import NodeSpec from
kemu.topology). Kept so that plugins written for kemu 0.1 still import."""

import warnings

from kemu.scenario.objects import *  # noqa: F403
from kemu.scenario.objects import NodeSpec, PodSpec, Service

__all__ = ["NodeSpec", "PodSpec", "Service"]
warnings.warn("kemu.objects moved to kemu.scenario.objects; topologies import from "
              "kemu.topology", DeprecationWarning, stacklevel=2)
