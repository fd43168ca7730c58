"""Server-rendered pages: experiment results for the growth team, the guided experiment
workflow and the flag pages for product managers. Views are thin: they read through
selectors, shape numbers with the pure `pages.presentation`, and write only through services."""
