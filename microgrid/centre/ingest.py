"""What the centre does with each message it receives: which island and kind it is, and whether it is new.

Islands publish at least once (QoS 1, replay after an outage or a restart), so the same message
may arrive twice; every sequenced message (status, alarms, cycle) carries the island's ``seq``,
strictly increasing, and :class:`SeqFilter` keeps only the first arrival of each (docs/situation-centre.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from microgrid.uplink.topics import SEQUENCED

__all__ = ["Arrival", "SeqFilter", "parse_topic"]


@dataclass(frozen=True)
class Arrival:
    """A message as the centre sees it: city, island, kind (status, alarms, cycle, online) and the JSON payload."""

    city: str
    island: str
    kind: str
    payload: dict[str, Any]


def parse_topic(topic: str, payload: bytes) -> Arrival | None:
    """``<city>/islands/<island>/<kind>`` and its JSON; None for another topic or a payload not a JSON object."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[1] != "islands" or parts[3] not in (*SEQUENCED, "online"):
        return None
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return Arrival(parts[0], parts[2], parts[3], body) if isinstance(body, dict) else None


@dataclass
class SeqFilter:
    """The newest ``seq`` seen per island and kind; :meth:`accept` is False for a duplicate or an older message.

    Per kind, not per island: retained messages arrive out of the island's order (a subscriber gets
    the retained ``alarms``, last changed long ago, beside the latest ``status``), but each kind's
    messages are published in ``seq`` order."""

    last: dict[tuple[str, str], int] = field(default_factory=dict)

    def accept(self, arrival: Arrival) -> bool:
        """True when ``arrival`` is new (``online`` messages have no seq and are always new)."""
        pending: dict[tuple[str, str], int] = {}
        if not self.fresh(arrival, pending):
            return False
        self.last.update(pending)
        return True

    def fresh(self, arrival: Arrival, pending: dict[tuple[str, str], int]) -> bool:
        """:meth:`accept` for a batch not yet stored: the new ``seq`` goes to ``pending``, not to :attr:`last`.

        The caller merges ``pending`` into :attr:`last` once the batch is committed, and drops it when
        the commit fails, so a message that was never stored is not taken for a duplicate later."""
        if arrival.kind not in SEQUENCED:
            return True
        seq, key = arrival.payload.get("seq"), (arrival.island, arrival.kind)
        if not isinstance(seq, int) or isinstance(seq, bool) or seq <= pending.get(key, self.last.get(key, 0)):
            return False
        pending[key] = seq
        return True
