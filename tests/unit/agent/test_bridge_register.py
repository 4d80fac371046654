"""plexd's client redeems bridge tokens at the bridge seam (docs/nat.md)."""

from __future__ import annotations


def test_bridge_tokens_register_at_the_bridge_seam():
    import asyncio

    import httpx

    from plexsphere.client.node import NodeClient
    from plexsphere.wire.enrolment import RegisterRequest

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(403, json={"type": "about:blank", "title": "Forbidden", "status": 403,
                                         "code": "kind_mismatch"})

    async def go() -> None:
        client = NodeClient("http://cp", transport=httpx.MockTransport(handler))
        request = RegisterRequest(project_id="0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c1", resource_id="r",
                                  bootstrap_token="t", nonce="n", public_key="A" * 43 + "=")
        for bridge in (False, True):
            try:
                await client.register(request, bridge=bridge)
            except Exception:  # noqa: BLE001 - the refusal is not what this test is about
                pass
        await client.aclose()

    asyncio.run(go())
    assert seen == ["/v1/register", "/v1/bridges/register"]
