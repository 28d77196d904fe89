"""Tests for whichbin.registry."""
