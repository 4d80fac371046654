"""plexd, the node agent: registration and identity store, a pure reconcile(desired, actual) →
operations, WireGuard backends (kernel, wireguard-go, in-memory fake) and the asyncio control loop
that keeps the interface in step with the control plane. Imports only `client` and `wire`."""
