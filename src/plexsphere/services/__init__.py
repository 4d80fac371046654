"""Use cases: one transaction each (load → pure rules → save + outbox)."""
