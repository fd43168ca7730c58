"""Server-rendered pages: experiment results for the growth team, the guided experiment
workflow and flag pages for product managers. Views are thin: they read through selectors,
shape numbers with the pure `viewmodels`, and write only through services."""
