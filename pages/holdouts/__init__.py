"""Holdout result pages and the growth page."""
