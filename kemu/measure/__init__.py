"""Measurement kinds: one module each (ping.py, iperf3.py, …), a Measurement subclass found
by its `type` (see base.py); requests.py is what the request-by-request kinds share, probe.py
the client program they run, stats.py the statistics of their summaries."""
