"""Messaging: the paho MQTT adapter and the on-disk outbox."""
