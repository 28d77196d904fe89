"""Tests for whichbin.web."""
