SET search_path = plexsphere;

CREATE TABLE key_rotations (
    id                uuid PRIMARY KEY,
    node_id           uuid NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    peer_id           uuid NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'completed')),
    requested_by      text NOT NULL,             -- subject that triggered it (user:…, system:key-age)
    requested_at      timestamptz NOT NULL,
    completed_at      timestamptz,
    new_public_key    bytea,
    kid               text,
    wrap_key_version  integer
);
CREATE UNIQUE INDEX key_rotations_one_pending ON key_rotations (node_id) WHERE status = 'pending';
CREATE INDEX key_rotations_node ON key_rotations (node_id, requested_at DESC);
