"""Experiment pages: the list, the result page, exports and the guided creation."""
