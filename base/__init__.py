"""What every app builds on: environments and their config version, management tokens, key
rules, audited service writes and the admin's base classes."""
