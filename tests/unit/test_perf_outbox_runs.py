"""The worker groups a claimed batch into same-topic runs; commuting topics must not split them."""

from __future__ import annotations

from plexsphere.worker import outbox


def rows(*topics: str) -> list[dict]:
    return [{"id": i, "topic": t} for i, t in enumerate(topics)]


def test_alternating_adoption_rows_leave_one_anchoring_run(monkeypatch):
    monkeypatch.setattr(outbox, "COMMUTING", {"resource.created"})
    batch = rows("node.registered", "resource.created", "node.registered", "resource.created", "node.registered")
    runs = outbox._runs(batch)
    assert [[r["id"] for r in run] for run in runs] == [[0, 2, 4], [1, 3]]


def test_order_across_ordinary_topics_is_kept(monkeypatch):
    monkeypatch.setattr(outbox, "COMMUTING", set())
    batch = rows("project.created", "node.registered", "project.created")
    assert [[r["id"] for r in run] for run in outbox._runs(batch)] == [[0], [1], [2]]
