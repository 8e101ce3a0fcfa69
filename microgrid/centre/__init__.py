"""The Situation Centre's side of the MQTT link (issue 16): here, ingest only (:mod:`~microgrid.centre.ingest`)."""

from microgrid.centre.ingest import Arrival, SeqFilter, parse_topic

__all__ = ["Arrival", "SeqFilter", "parse_topic"]
