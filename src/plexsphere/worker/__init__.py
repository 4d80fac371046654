"""Outbox handlers and periodic sweeps (reachability, unattended key renewal)."""
