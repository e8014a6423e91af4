"""Alerting: incidents from check transitions, routing, grouping, silences, inhibition, and a
durable outbox that delivers notifications through one notifier per channel type."""
