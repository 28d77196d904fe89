"""Tests for whichbin.messaging."""
