"""The one interface every WireGuard backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from plexsphere.agent.model import ActualState, Operation


class WireGuardError(Exception):
    pass


class WireGuardBackend(ABC):
    name: str = "abstract"
    # Blocking backends (subprocesses, sockets) are called through a worker thread by the agent.
    blocking: bool = True

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname

    @abstractmethod
    def read(self) -> ActualState:
        """The interface as it is now; ActualState(exists=False) when it does not exist."""

    @abstractmethod
    def apply(self, ops: Sequence[Operation]) -> None:
        """Carries out reconcile's operations in order."""

    @abstractmethod
    def down(self) -> None:
        """Removes the interface (only on --down-on-exit or explicit teardown)."""
