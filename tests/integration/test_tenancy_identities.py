"""Identities per Domain: pseudonymous summaries, detail gated on domain-audit, pagination."""

from __future__ import annotations

import re
import uuid

from tests.integration.tenancy_support import make_operator, new_domain


def test_local_admin_is_an_identity_of_the_seeded_domain(stack):
    with stack.http() as http:
        page = http.get(f"/v1/domains/{stack.domain_id}/identities").json()
    admin = next(i for i in page["items"] if i["id"] == str(stack.admin_id))
    assert admin["kind"] == "user" and admin["domain_id"] == str(stack.domain_id)
    assert re.fullmatch(r"[0-9a-f]{64}", admin["external_subject_pseudonym"])
    assert "external_subject" not in admin and "email" not in admin


def test_list_order_pagination_and_kind(stack):
    domain = new_domain(stack)
    made = [make_operator(stack, domain["id"]) for _ in range(5)]
    with stack.http() as http:
        ids, cursor = [], None
        while True:
            page = http.get(f"/v1/domains/{domain['id']}/identities",
                            params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            ids += [i["id"] for i in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert ids == [str(m.id) for m in reversed(made)]  # newest first
        services = http.get(f"/v1/domains/{domain['id']}/identities", params={"kind": "service-identity"}).json()
        assert services["items"] == []
        bad = http.get(f"/v1/domains/{domain['id']}/identities", params={"kind": "robot"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_kind"
        missing = http.get(f"/v1/domains/{uuid.uuid4()}/identities")
        assert missing.status_code == 404 and missing.json()["code"] == "domain_not_found"


def test_detail_shows_plaintext_subject_only_to_auditors(stack):
    domain = new_domain(stack)
    person = make_operator(stack, domain["id"], email="person@example.com")
    viewer = make_operator(stack, domain["id"], grants=[("domain", domain["id"], "viewer")])
    auditor = make_operator(stack, domain["id"], grants=[("domain", domain["id"], "auditor")])
    url = f"/v1/domains/{domain['id']}/identities/{person.id}"
    with stack.http(viewer.token) as http:
        seen = http.get(url).json()
    assert "external_subject" not in seen and "email" not in seen
    assert seen["updated_at"]
    with stack.http(auditor.token) as http:
        audited = http.get(url).json()
    assert audited["email"] == "person@example.com"
    assert audited["external_subject"].startswith("local:")
    assert audited["external_subject_pseudonym"] == seen["external_subject_pseudonym"]
    with stack.http() as http:
        # A principal of another Domain is not an identity of this one.
        other = http.get(f"/v1/domains/{domain['id']}/identities/{stack.admin_id}")
        assert other.status_code == 404 and other.json()["code"] == "identity_not_found"
        bad = http.get(f"/v1/domains/{domain['id']}/identities/xyz")
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_principal_id"
