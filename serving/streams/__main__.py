"""``python -m serving.streams``: the streaming process (see ``serving.streams.server``)."""

from __future__ import annotations

import os

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    django.setup()
    from serving.streams.server import run

    run()


if __name__ == "__main__":
    main()
