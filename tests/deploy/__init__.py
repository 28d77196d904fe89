"""Tests for whichbin.deploy."""
