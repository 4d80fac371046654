"""One router per noun. `ROUTERS` lists the modules the app mounts (each exports `router`)."""

ROUTERS = (
    "meta",
    "auth",
    "domains",
    "projects",
    "resources",
    "identities",
    "authz",
    "bootstrap_tokens",
    "register",
    "nodes",
    "events",
    "topology",
    "rotation",
    "bridge",
)
