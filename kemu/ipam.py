"""Deprecated: moved to kemu.k8s.ipam (backends: import Lease from kemu.backend). Kept so that
plugins written for kemu 0.1 still import."""

import warnings

from kemu.k8s.ipam import Lease, SubnetLeaseStore

__all__ = ["Lease", "SubnetLeaseStore"]
warnings.warn("kemu.ipam moved to kemu.k8s.ipam; backends import from kemu.backend",
              DeprecationWarning, stacklevel=2)
