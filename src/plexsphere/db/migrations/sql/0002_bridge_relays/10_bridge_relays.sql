SET search_path = plexsphere;

-- Bridge relays (issue 12). One relay configuration per bridge Resource (the contract's singleton).
CREATE TABLE bridge_relays (
    resource_id  uuid PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
    domain_id    uuid NOT NULL REFERENCES domains(id),
    enabled      boolean NOT NULL,
    listen_port  integer NOT NULL CHECK (listen_port BETWEEN 1 AND 65535),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX bridge_relays_domain ON bridge_relays (domain_id) WHERE enabled;

-- What each Node last reported about its own edges (heartbeat `nat_summary.relayed_peers`):
-- peer node id -> relay node id for the edges it currently sends through a relay. Direct edges are
-- absent, so the column stays small (relayed edges are the exception).
ALTER TABLE peers ADD COLUMN relayed_peers jsonb;  -- NULL until the Node's first report

-- Registration gains the seam's token kind: `POST /v1/register` redeems node tokens (as before),
-- `POST /v1/bridges/register` bridge tokens, and a bridge binds only to (or adopts) a bridge Resource.
DROP FUNCTION register_node(bytea, uuid, text, text, boolean, text, bytea, uuid, bytea, bytea, uuid, text);
CREATE FUNCTION register_node(
    p_token_digest   bytea,
    p_project_id     uuid,
    p_handle         text,
    p_name           text,
    p_adopt          boolean,
    p_nonce          text,
    p_public_key     bytea,
    p_node_id        uuid,
    p_nsk_wrapped    bytea,
    p_nsk_digest     bytea,
    p_new_resource   uuid,
    p_outbox_channel text,
    p_kind           text DEFAULT 'node'
) RETURNS TABLE (node_id uuid, mesh_ip text, domain_id uuid, mesh_cidr text, env text, resource_id uuid,
                 adopted boolean, signing_key_id text, signing_public_key bytea)
LANGUAGE plpgsql AS $$
DECLARE
    tok        bootstrap_tokens%ROWTYPE;
    v_cidr     cidr;
    v_resource uuid;
    v_adopted  boolean := false;
    v_next     bigint;
    v_last     bigint;
    v_offset   bigint;
    v_ip       inet;
    v_key_id   text;
    v_key      bytea;
BEGIN
    SELECT * INTO tok FROM bootstrap_tokens b WHERE b.digest = p_token_digest FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '403:token_invalid';
    END IF;
    IF tok.consumed_at IS NOT NULL THEN
        RAISE EXCEPTION '403:token_consumed';
    ELSIF tok.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION '403:token_revoked';
    ELSIF tok.expires_at <= now() THEN
        RAISE EXCEPTION '403:token_expired';
    ELSIF tok.kind <> p_kind THEN
        RAISE EXCEPTION '403:kind_mismatch';
    ELSIF tok.project_id <> p_project_id THEN
        RAISE EXCEPTION '403:project_mismatch';
    END IF;
    -- The partial unique index is the guard against concurrent collisions; this only names the common case.
    PERFORM 1 FROM bootstrap_tokens b WHERE b.project_id = tok.project_id AND b.consumed_nonce = p_nonce;
    IF FOUND THEN
        RAISE EXCEPTION '403:nonce_collision';
    END IF;

    SELECT d.mesh_cidr INTO v_cidr
      FROM projects p JOIN domains d ON d.id = p.domain_id
     WHERE p.id = tok.project_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '404:project_not_found';
    END IF;
    -- The Node must leave with the key that verifies its events, or not register at all.
    SELECT k.key_id, k.public_key INTO v_key_id, v_key
      FROM domain_signing_keys k WHERE k.domain_id = tok.domain_id AND k.active;
    IF NOT FOUND THEN
        RAISE EXCEPTION '503:signing_unavailable';
    END IF;

    -- Adoption (DECISIONS 2).
    SELECT r.id INTO v_resource FROM resources r WHERE r.project_id = tok.project_id AND r.handle = p_handle;
    IF NOT FOUND THEN
        IF NOT p_adopt THEN
            RAISE EXCEPTION '404:resource_not_found';
        END IF;
        INSERT INTO resources AS r (id, project_id, domain_id, handle, kind, origin, external_ref, created_at, updated_at)
        VALUES (p_new_resource, tok.project_id, tok.domain_id, p_handle, CASE p_kind WHEN 'bridge' THEN 'bridge' ELSE 'vm' END,
                'adopted', p_name, now(), now())
        ON CONFLICT (project_id, handle) DO NOTHING
        RETURNING r.id INTO v_resource;
        IF v_resource IS NULL THEN  -- a concurrent registration adopted the same handle first
            SELECT r.id INTO v_resource FROM resources r WHERE r.project_id = tok.project_id AND r.handle = p_handle;
        ELSE
            v_adopted := true;
        END IF;
    END IF;
    IF p_kind = 'bridge' THEN
        PERFORM 1 FROM resources r WHERE r.id = v_resource AND r.kind = 'bridge';
        IF NOT FOUND THEN
            RAISE EXCEPTION '409:resource_not_bridge';
        END IF;
    END IF;
    IF NOT v_adopted THEN
        PERFORM 1 FROM nodes n WHERE n.resource_id = v_resource;
        IF FOUND THEN
            RAISE EXCEPTION '409:resource_already_bound';
        END IF;
    END IF;

    -- Allocator (DECISIONS 9): lowest released offset, else the high-water mark. Both O(log n).
    SELECT a.next_offset, a.last_offset INTO v_next, v_last
      FROM address_pools a WHERE a.domain_id = tok.domain_id FOR UPDATE;
    IF NOT FOUND THEN  -- a Domain written without its pool row: create it from the CIDR
        INSERT INTO address_pools AS a (domain_id, next_offset, last_offset)
        VALUES (tok.domain_id, 1, host_capacity(v_cidr)) ON CONFLICT DO NOTHING;
        SELECT a.next_offset, a.last_offset INTO v_next, v_last
          FROM address_pools a WHERE a.domain_id = tok.domain_id FOR UPDATE;
    END IF;
    DELETE FROM released_addresses ra
     WHERE ra.domain_id = tok.domain_id
       AND ra.host_offset = (SELECT min(x.host_offset) FROM released_addresses x WHERE x.domain_id = tok.domain_id)
    RETURNING ra.host_offset INTO v_offset;
    IF v_offset IS NULL THEN
        IF v_next > v_last THEN
            RAISE EXCEPTION '503:pool_exhausted';
        END IF;
        v_offset := v_next;
        UPDATE address_pools a SET next_offset = v_next + 1 WHERE a.domain_id = tok.domain_id;
    END IF;
    v_ip := host(v_cidr + v_offset)::inet;

    INSERT INTO nodes (id, domain_id, project_id, resource_id, kind, name, env, public_key, public_key_set_at,
                       mesh_ip, host_offset, nsk_wrapped, nsk_digest, created_at, updated_at)
    VALUES (p_node_id, tok.domain_id, tok.project_id, v_resource, tok.kind, p_name, tok.env_prefix, p_public_key,
            now(), v_ip, v_offset, p_nsk_wrapped, p_nsk_digest, now(), now());
    UPDATE bootstrap_tokens b
       SET consumed_at = now(), consumed_nonce = p_nonce, consumed_by_node = p_node_id
     WHERE b.id = tok.id;

    INSERT INTO outbox (topic, payload) VALUES ('node.registered', jsonb_build_object(
        'node_id', p_node_id, 'domain_id', tok.domain_id, 'project_id', tok.project_id, 'resource_id', v_resource));
    IF v_adopted THEN
        INSERT INTO outbox (topic, payload) VALUES ('resource.created', jsonb_build_object(
            'resource_id', v_resource, 'project_id', tok.project_id, 'domain_id', tok.domain_id));
    END IF;
    PERFORM pg_notify(p_outbox_channel, 'node.registered');

    RETURN QUERY SELECT p_node_id, host(v_ip), tok.domain_id, v_cidr::text, tok.env_prefix, v_resource, v_adopted,
                        v_key_id, v_key;
END
$$;
