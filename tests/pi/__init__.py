"""Tests for whichbin.pi."""
