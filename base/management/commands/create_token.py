"""`manage.py create_token --user NAME --scope read|write [--name N] [--environment KEY ...] [--json]`: a new management
API token for automation, printed once (only its SHA-256 is stored); audited."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.types import Actor
from base.models import ApiToken, Environment
from base.tokens import api_token_create
from config.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a management API token for a user and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="the user the token acts as (user name)")
        parser.add_argument("--scope", required=True, choices=ApiToken.Scope.values,
                            help="read: GET only; write: every management call")
        parser.add_argument("--name", default="", help="a label to recognise the token by (default: date)")
        parser.add_argument("--environment", action="append", default=[], metavar="KEY",
                            help="act only in this environment (repeat for several; default: every environment)")
        parser.add_argument("--json", action="store_true", help='print {"token", "scope", "user", "name", "prefix"}')

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named '{options['user']}'.")
        keys = options["environment"]
        environments = list(Environment.objects.filter(key__in=keys))
        missing = sorted(set(keys) - {env.key for env in environments})
        if missing:
            raise CommandError(f"No environment named {', '.join(missing)}.")
        name = options["name"] or f"command line {timezone.now():%Y-%m-%d %H:%M}"
        try:
            token, raw = api_token_create(actor=Actor(label="create_token", via="command"), user=user, name=name,
                                          scope=options["scope"], environments=environments)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.details or ''}".strip()) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"token": raw, "scope": token.scope, "user": user.get_username(),
                                          "name": token.name, "prefix": token.prefix,
                                          "environments": sorted(keys)}))
            return
        self.stdout.write(raw)
        self.stderr.write(f"Token '{token.name}' ({token.prefix}…, {token.scope}) for {user.get_username()}: "
                          "shown once, store it now.")
