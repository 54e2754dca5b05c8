"""CNI backends shipped with kemu (imported as `kemu_plugins`), registered under the
`kemu.backends` entry-point group like any third-party backend. See kemu/backend.py."""
