"""`manage.py revoke_token PREFIX`: revoke the management token whose shown prefix starts with
PREFIX (or the whole token); it stops working at once. Audited."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.types import Actor
from base.tokens import api_token_by_prefix, api_token_revoke
from config.errors import ApplicationError


class Command(BaseCommand):
    help = "Revoke a management API token by its prefix (sbm_ and at least 4 more characters)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="the token's prefix as the admin shows it, or the whole token")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token = api_token_by_prefix(prefix=options["prefix"])
            if token.revoked_at is not None:
                self.stdout.write(f"Token {token.prefix}… ({token.name}) was already revoked.")
                return
            api_token_revoke(actor=Actor(label="revoke_token", via="command"), token=token)
        except ApplicationError as exc:
            details = exc.details.get("tokens") if isinstance(exc.details, dict) else None
            raise CommandError(exc.message + (f" Matches: {', '.join(details)}" if details else "")) from exc
        self.stdout.write(f"Revoked token {token.prefix}… ({token.name}) of {token.user.get_username()}.")
