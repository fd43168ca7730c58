"""Set-up shared by the benchmarks that run Django in-process: a database of their own on the
server of DATABASE_URL, migrated, and a one-line description of the machine."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def configure(suffix: str, database: str | None = None, *, debug: bool = False) -> str:
    """Create (when missing) and migrate `<DATABASE_URL name>_<suffix>`; return its URL.

    Django is set up in this process with the base settings and that database.
    """
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/splitbase")
    parts = urlsplit(base)
    database = database or f"{parts.path.lstrip('/') or 'splitbase'}_{suffix}"
    url = urlunsplit(parts._replace(path=f"/{database}"))
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    if debug:
        os.environ.setdefault("DJANGO_DEBUG", "true")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


def bench_flag(key: str) -> tuple[Any, Any, Any]:
    """The `bench` environment and a two-variant string flag `key`: (actor, environment, flag)."""
    from audit.types import Actor
    from base.models import Environment
    from flags import services as flag_services
    from flags.models import Flag

    actor = Actor.system("bench")
    env = Environment.objects.filter(key="bench").first() or flag_services.environment_create(actor=actor, key="bench")
    flag = Flag.objects.filter(key=key).first() or flag_services.flag_create(
        actor=actor, key=key, value_type="string",
        variants=[{"key": "control", "value": "a"}, {"key": "treatment", "value": "b"}],
    )
    return actor, env, flag


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by a benchmark: SIGTERM, then SIGKILL after 20 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def machine(*, postgres: bool = False) -> str:
    """Cores, CPU model, kernel and Python (and the psql client's version when asked)."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python " \
           f"{platform.python_version()}"
    if postgres:
        version = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False).stdout.strip()
        text += f", {version or 'PostgreSQL'}"
    return text
