-- Core: the outbox and the durable per-Domain event log.
CREATE SCHEMA IF NOT EXISTS plexsphere;
SET search_path = plexsphere;

-- Transactional outbox: a use case appends rows in its own transaction; workers claim them with
-- SELECT ... FOR UPDATE SKIP LOCKED, so several workers are safe and handlers must be idempotent.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text        NOT NULL,
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    available_at  timestamptz NOT NULL DEFAULT now(),
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text
);
CREATE INDEX outbox_available ON outbox (available_at, id);

-- Durable event log, one row per event (not per recipient). `seq` is the SSE id. An event
-- concerns every Node of the Domain, or only `target_node_id`, minus `exclude_node_id`.
CREATE TABLE events (
    seq             bigserial   PRIMARY KEY,
    domain_id       uuid        NOT NULL,
    event_id        uuid        NOT NULL UNIQUE,
    type            text        NOT NULL,
    target_node_id  uuid,
    exclude_node_id uuid,
    envelope        text        NOT NULL,   -- the signed JSON envelope, exactly as sent
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_domain_seq ON events (domain_id, seq);
