"""The topology of a 1,000-Node Domain (~1 M edges) streams in flat server memory."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from tests.integration.enrolment_helpers import insert_nodes_sql
from tests.integration.mesh_helpers import make_domain, make_project


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


@pytest.mark.slow
def test_thousand_node_topology_streams_in_flat_memory(stack):
    domain_id = make_domain(stack, "10.200.0.0/21")  # 2,046 hosts; outside unique_cidr's range
    project_id = make_project(stack, domain_id)
    insert_nodes_sql(stack.database_url, domain_id, project_id, range(1, 1001), anchored=True)
    pid = stack.server.proc.pid
    url = f"{stack.url}/v1/domains/{domain_id}/mesh/topology"
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(timeout=120) as http:
        http.get(url, headers=headers, params={"summary": "true"})  # warm the code paths once
        baseline = _rss_kib(pid)
        peak = baseline
        received = 0
        edges_seen = 0
        started = time.monotonic()
        with http.stream("GET", url, headers=headers) as resp:
            assert resp.status_code == 200
            tail = b""
            marker = b'"source_node_id"'
            for chunk in resp.iter_bytes():
                received += len(chunk)
                # Count across chunk boundaries: the carried tail is shorter than one marker.
                window = tail[-(len(marker) - 1):] + chunk
                edges_seen += window.count(marker)
                tail = window[-200:]
                peak = max(peak, _rss_kib(pid))
        elapsed = time.monotonic() - started
        summary = orjson.loads(http.get(url, headers=headers, params={"summary": "true"}).content)
    print(f"\n1,000 nodes: {edges_seen} edges, {received / 1e6:.0f} MB in {elapsed:.1f}s; "
          f"server RSS {baseline / 1024:.0f} MiB → peak {peak / 1024:.0f} MiB")
    assert edges_seen == 1000 * 999 == summary["edge_count"]
    assert tail.endswith(b"]}")
    # The body is ~150 MB; the server's memory must not grow by anything close to it.
    assert peak - baseline < 64 * 1024
