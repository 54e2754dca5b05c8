"""Event kinds: the changes a scenario's `events:` (and a lab's shell) make to a running
cluster — one class per kind, with its keys, its shell words, its check and how it is
applied. See base.py."""
