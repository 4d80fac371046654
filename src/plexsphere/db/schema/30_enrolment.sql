SET search_path = plexsphere;

CREATE TABLE bootstrap_tokens (
    id                 uuid PRIMARY KEY,
    project_id         uuid NOT NULL REFERENCES projects(id),
    domain_id          uuid NOT NULL REFERENCES domains(id),
    kind               text NOT NULL CHECK (kind IN ('node', 'bridge')),
    env_prefix         text NOT NULL,
    digest             bytea NOT NULL UNIQUE,     -- HMAC of the plaintext (DECISIONS 3)
    issued_by_user_id  uuid NOT NULL,
    issued_at          timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    consumed_at        timestamptz,
    consumed_nonce     text,
    consumed_by_node   uuid,
    revoked_at         timestamptz
);
CREATE INDEX bootstrap_tokens_project ON bootstrap_tokens (project_id, issued_at, id);
CREATE UNIQUE INDEX bootstrap_tokens_nonce ON bootstrap_tokens (project_id, consumed_nonce)
    WHERE consumed_nonce IS NOT NULL;

-- Mesh address pools. Allocation is O(log n): the lowest released offset if any, else the
-- high-water mark. Offsets are host numbers inside the pool's CIDR (1 = first usable).
CREATE TABLE address_pools (
    domain_id     uuid PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,
    next_offset   bigint NOT NULL DEFAULT 1,
    last_offset   bigint NOT NULL      -- highest usable offset (broadcast excluded for IPv4)
);
CREATE TABLE released_addresses (
    domain_id  uuid NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    host_offset     bigint NOT NULL,
    PRIMARY KEY (domain_id, host_offset)
);

CREATE TABLE nodes (
    id            uuid PRIMARY KEY,
    domain_id     uuid NOT NULL REFERENCES domains(id),
    project_id    uuid NOT NULL REFERENCES projects(id),
    resource_id   uuid NOT NULL REFERENCES resources(id),
    kind          text NOT NULL DEFAULT 'node',   -- token kind it enrolled with: node | bridge
    name          text NOT NULL,                  -- the substrate's own name (resource_id on the wire)
    env           text NOT NULL,
    public_key    bytea NOT NULL,
    public_key_set_at timestamptz NOT NULL,
    mesh_ip       inet NOT NULL,
    host_offset   bigint NOT NULL,
    nsk_wrapped   bytea NOT NULL,
    nsk_digest    bytea NOT NULL UNIQUE,          -- HMAC of the NSK, for bare-NSK bearers (DECISIONS 1)
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (domain_id, mesh_ip),
    UNIQUE (domain_id, host_offset)
);
CREATE UNIQUE INDEX nodes_resource_live ON nodes (resource_id);
CREATE INDEX nodes_domain ON nodes (domain_id, id);
CREATE INDEX nodes_project ON nodes (project_id, id);
