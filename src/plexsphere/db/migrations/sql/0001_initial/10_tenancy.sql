SET search_path = plexsphere;

CREATE TABLE domains (
    id                        uuid PRIMARY KEY,
    slug                      text NOT NULL UNIQUE,
    name                      text NOT NULL,
    description               text NOT NULL DEFAULT '',
    region                    text,
    env                       text NOT NULL DEFAULT 'dev',
    mesh_cidr                 cidr NOT NULL,
    heartbeat_interval_s      integer NOT NULL DEFAULT 30,
    stale_after_s             integer NOT NULL DEFAULT 90,
    unreachable_after_s       integer NOT NULL DEFAULT 300,
    endpoint_ttl_s            integer NOT NULL DEFAULT 300,
    max_key_age_s             integer,            -- unattended key renewal; NULL = off
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    CONSTRAINT domains_mesh_cidr_no_overlap EXCLUDE USING gist (mesh_cidr inet_ops WITH &&)
);

-- Ed25519 signing keys; the private half only wrapped under the KEK.
CREATE TABLE domain_signing_keys (
    id                  uuid PRIMARY KEY,
    domain_id           uuid NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    key_id              text NOT NULL,            -- did:plexsphere:domain/<env>#k<N> (DECISIONS 4)
    generation          integer NOT NULL,
    public_key          bytea NOT NULL,
    private_key_wrapped bytea NOT NULL,
    active              boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL,
    UNIQUE (domain_id, generation),
    -- Unique per Domain, not globally: every `dev` Domain's first key is did:plexsphere:domain/dev#k1.
    UNIQUE (domain_id, key_id)
);
CREATE UNIQUE INDEX domain_signing_keys_one_active ON domain_signing_keys (domain_id) WHERE active;

CREATE TABLE projects (
    id              uuid PRIMARY KEY,
    domain_id       uuid NOT NULL REFERENCES domains(id),
    slug            text NOT NULL,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    sub_range_cidr  cidr,
    created_by      uuid,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (domain_id, slug)
);

-- Resources are the handles Nodes enrol against (DECISIONS 2): `handle` is the platform handle.
CREATE TABLE resources (
    id            uuid PRIMARY KEY,
    project_id    uuid NOT NULL REFERENCES projects(id),
    domain_id     uuid NOT NULL REFERENCES domains(id),
    handle        text NOT NULL,
    kind          text NOT NULL,
    origin        text NOT NULL CHECK (origin IN ('adopted', 'provisioned')),
    external_ref  text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (project_id, handle)
);

-- Operator identities. Local ones sign in with a password (argon2id hash).
CREATE TABLE identities (
    id                  uuid PRIMARY KEY,
    domain_id           uuid REFERENCES domains(id),
    kind                text NOT NULL CHECK (kind IN ('user', 'service-identity')),
    username            text UNIQUE,
    display_name        text NOT NULL,
    email               text,
    external_subject    text NOT NULL,
    password_hash       text,
    last_sign_in_at     timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX identities_domain_created ON identities (domain_id, created_at DESC, id DESC);

-- ReBAC relation tuples: <object_type>:<object_id>#<relation>@<subject_type>:<subject_id>[#<subject_relation>].
-- `source` tells operator-written tuples ('api') from those the worker mirrors from tenancy ('mirror').
CREATE TABLE relation_tuples (
    id                uuid PRIMARY KEY,
    object_type       text NOT NULL,
    object_id         text NOT NULL,
    relation          text NOT NULL,
    subject_type      text NOT NULL,
    subject_id        text NOT NULL,
    subject_relation  text NOT NULL DEFAULT '',
    caveat_name       text,
    caveat_context    jsonb,
    project_id        uuid,           -- the Project a tuple is listed under (relation-tuples API)
    source            text NOT NULL DEFAULT 'api',
    created_at        timestamptz NOT NULL,
    UNIQUE (object_type, object_id, relation, subject_type, subject_id, subject_relation)
);
CREATE INDEX relation_tuples_subject ON relation_tuples (subject_type, subject_id);
CREATE INDEX relation_tuples_project ON relation_tuples (project_id, created_at, id);
