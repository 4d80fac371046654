SET search_path = plexsphere;

-- Bearer access tokens (sign-in, device flow) and browser sessions: only an HMAC digest is stored.
-- A session also keeps the digest of its CSRF token, so the double-submit value is bound to it.
CREATE TABLE access_tokens (
    id            uuid PRIMARY KEY,
    identity_id   uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    digest        bytea NOT NULL UNIQUE,
    kind          text NOT NULL CHECK (kind IN ('access', 'session')),
    csrf_digest   bytea,
    amr           text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX access_tokens_identity ON access_tokens (identity_id);
CREATE INDEX access_tokens_expires ON access_tokens (expires_at);

-- Long-lived API tokens (`psk_<env>_…`), digest only; rotation keeps the old plaintext valid until
-- its retirement deadline (Sunset).
CREATE TABLE api_tokens (
    id               uuid PRIMARY KEY,
    identity_id      uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    env_prefix       text NOT NULL,
    digest           bytea NOT NULL UNIQUE,
    previous_digest  bytea UNIQUE,
    previous_valid_until timestamptz,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    last_used_at     timestamptz,
    rotated_at       timestamptz,
    revoked_at       timestamptz
);
CREATE INDEX api_tokens_identity ON api_tokens (identity_id, created_at);

-- RFC 8628 device authorization grants. `user_code` is stored without its dash.
CREATE TABLE device_codes (
    id                 uuid PRIMARY KEY,
    device_code_digest bytea NOT NULL UNIQUE,
    user_code          text NOT NULL UNIQUE,
    domain_id          uuid NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    client_id          text,
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'redeemed')),
    identity_id        uuid REFERENCES identities(id) ON DELETE CASCADE,
    amr                text[] NOT NULL DEFAULT '{}',
    interval_s         integer NOT NULL DEFAULT 5,
    last_polled_at     timestamptz,
    approved_at        timestamptz,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL
);
CREATE INDEX device_codes_expires ON device_codes (expires_at);

-- Failed password sign-ins per key (`user:<name>|<source>`, `source:<addr>`) in a fixed window,
-- shared by every server process.
CREATE TABLE sign_in_throttle (
    key               text PRIMARY KEY,
    failures          integer NOT NULL,
    window_started_at timestamptz NOT NULL
);
