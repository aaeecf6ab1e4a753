"""The outbox when a webhook is deleted while one of its deliveries is in flight: the
attempt's outcome, recorded later, must not land on another delivery. SQLite gives a new
row the id of the newest deleted one, so a new webhook's first delivery can have the id of
the one in flight. On SQLite and PostgreSQL, real databases."""

from __future__ import annotations

from cellops_server.schemas import WebhookCreate
from cellops_server.store import Store
from cellops_server.webhooks import outbox, registry
from cellops_server.webhooks.send import Outcome

SETTINGS = outbox.Settings(allow_private=True)


def add_webhook(store: Store, url: str) -> int:
    body = WebhookCreate(url=url, events=["alias.moved"], secret="s")
    return registry.create(store.engine, body, "admin", allow_private=True).id


def deliveries(store: Store, webhook_id: int) -> list[tuple[str, int]]:
    """(status, attempts) of each delivery the webhook's log lists."""
    return [(a.status, a.attempt) for a in registry.attempts(store.engine, webhook_id, 10)]


def test_an_outcome_of_a_deleted_webhook_never_ends_a_new_delivery(store: Store) -> None:
    old = add_webhook(store, "http://127.0.0.1:9/old")
    registry.test(store.engine, old, "admin")
    (in_flight,) = outbox.cycle(store.engine, SETTINGS, 10, set()).due or []
    registry.delete(store.engine, old)  # while its ping is being sent

    new = add_webhook(store, "http://127.0.0.1:9/new")
    delivery = registry.test(store.engine, new, "admin")
    # The old attempt ends (answered 200) and is recorded; the dispatcher still holds its
    # id as busy in that look, as it does while an attempt is in flight.
    look = outbox.cycle(
        store.engine, SETTINGS, 10, {in_flight.id}, [(in_flight, Outcome(200, None, 5.0))]
    )
    assert deliveries(store, new) == []  # nothing was sent to the new webhook yet
    if look.due == []:  # SQLite: the new ping has the id that was busy until now
        look = outbox.cycle(store.engine, SETTINGS, 10, set())
    (due,) = look.due or []
    assert (due.uuid, due.webhook_id, due.url) == (delivery, new, "http://127.0.0.1:9/new")
    outbox.cycle(store.engine, SETTINGS, 10, set(), [(due, Outcome(200, None, 5.0))])
    assert deliveries(store, new) == [("delivered", 1)]
