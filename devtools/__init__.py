"""Local development runners: embedded PostgreSQL and the demo launcher."""
