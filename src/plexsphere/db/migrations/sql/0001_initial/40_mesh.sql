SET search_path = plexsphere;

-- A Node anchored into its Domain's mesh. Created by the worker after registration.
CREATE TABLE peers (
    id                    uuid PRIMARY KEY,
    node_id               uuid NOT NULL UNIQUE REFERENCES nodes(id) ON DELETE CASCADE,
    domain_id             uuid NOT NULL REFERENCES domains(id),
    anchored_at           timestamptz NOT NULL,
    endpoint              text,
    nat_type              text,
    endpoint_reported_at  timestamptz,
    endpoint_stale_after  timestamptz,
    endpoint_stale        boolean NOT NULL DEFAULT false,   -- set by the sweeper past stale_after
    reachability          text NOT NULL DEFAULT 'healthy' CHECK (reachability IN ('healthy', 'stale', 'unreachable')),
    reachability_changed_at timestamptz NOT NULL,
    last_heartbeat_at     timestamptz,
    binary_version        text,
    binary_checksum       text
);
CREATE INDEX peers_domain ON peers (domain_id, node_id);
-- The endpoint sweeper's scan: only fresh reported endpoints (heartbeat columns stay unindexed so
-- heartbeat updates remain HOT).
CREATE INDEX peers_endpoint_fresh ON peers (endpoint_stale_after) WHERE endpoint IS NOT NULL AND NOT endpoint_stale;

-- Per-node PSKs (wrapped). The edge PSK of a pair is derived from both ends' live PSKs.
CREATE TABLE node_psks (
    id                uuid PRIMARY KEY,
    node_id           uuid NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    kid               text NOT NULL,
    wrap_key_version  integer NOT NULL,
    epoch             integer NOT NULL,
    psk_wrapped       bytea NOT NULL,
    created_at        timestamptz NOT NULL,
    retired_at        timestamptz
);
CREATE UNIQUE INDEX node_psks_live ON node_psks (node_id) WHERE retired_at IS NULL;
