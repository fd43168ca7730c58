import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from flags.demo_data import seed_demo


class Command(BaseCommand):
    help = (
        "Create the demo environments, segments and flags (idempotent). Each run sets a new admin "
        "password and a new management token and prints them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print keys, admin login and token as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        result = seed_demo()
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for key, keys in result["environments"].items():
            self.stdout.write(f"  {key}: client key {keys['client_key']}  server key {keys['server_key']}")
        admin = result["admin"]
        self.stdout.write(f"  admin login: {admin['username']} / {admin['password']}")
        self.stdout.write(f"  management token: {result['management_token']}")
