"""Signed deployments, safe fetching policy and MQTT certificates."""
