"""Underlay topologies shipped with kemu (imported as `kemu_topologies`), registered under the
`kemu.topologies` entry-point group like any third-party one. See kemu/topology.py."""
