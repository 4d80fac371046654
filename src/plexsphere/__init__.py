"""plexsphere: control plane, operator CLI (plexctl) and node agent (plexd) for a WireGuard mesh."""

__version__ = "0.1.0"
