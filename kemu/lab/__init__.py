"""Labs: a scenario's cluster left running — the lab file and finding labs (view.py), the
owner that builds and keeps it (owner.py), events sent to it (control.py), its shell
(shell.py)."""
