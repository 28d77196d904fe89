"""whichbin: teach a camera which bin an item belongs in."""

__version__ = "0.1.0"
