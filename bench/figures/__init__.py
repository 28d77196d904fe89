"""The blocks bench/readme_figures.py writes into README.md and docs/figures.md, rendered
from bench/results/*.json: ``text`` formats figures, ``tables`` holds a table per benchmark,
``sentences`` the prose that quotes them."""
