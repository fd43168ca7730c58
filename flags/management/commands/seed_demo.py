import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from flags.demo_credentials import demo_login_file
from flags.demo_data import seed_demo


class Command(BaseCommand):
    help = (
        "Create the demo environments, segments and flags (idempotent) and print the SDK keys, the admin "
        "login and a management token. The login and token are made once, kept in DEMO_DIR/credentials.json "
        "(readable by its owner only) and printed again by later runs while they still work."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print keys, admin login and token as JSON")
        parser.add_argument("--rotate-credentials", action="store_true",
                            help="set a new admin password and a new token (the old token is revoked)")
        parser.add_argument("--credentials-file", type=Path, default=None,
                            help="where the login and token are kept (default: DEMO_DIR/credentials.json)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["credentials_file"] or demo_login_file()
        result = seed_demo(credentials_file=path, rotate_credentials=options["rotate_credentials"])
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for key, keys in result["environments"].items():
            self.stdout.write(f"  {key}: client key {keys['client_key']}  server key {keys['server_key']}")
        admin = result["admin"]
        self.stdout.write(f"  admin login: {admin['username']} / {admin['password']}")
        self.stdout.write(f"  management token: {result['management_token']}")
        self.stdout.write(f"  (kept in {path}; --rotate-credentials makes new ones)")
