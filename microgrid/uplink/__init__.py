"""Publishing an island to the Situation Centre over MQTT, with store-and-forward (docs/situation-centre.md).

:mod:`~microgrid.uplink.topics` (the topic schema, the ``--publish`` URL), :mod:`~microgrid.uplink.payloads`
(pure builders of the documented messages, ``models/centre/*.schema.json``) and
:mod:`~microgrid.uplink.publish` (the outbox's sender over paho-mqtt; imported on its own, so that this
package stays light).
"""

from microgrid.uplink.payloads import CycleFacts, Island
from microgrid.uplink.topics import KINDS, Broker, island_topic, parse_url, slug

__all__ = ["KINDS", "Broker", "CycleFacts", "Island", "island_topic", "parse_url", "slug"]
