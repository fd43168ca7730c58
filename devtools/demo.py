"""`make demo`: migrate, seed demo data, then run the web server, a Celery worker and beat.

Run through `python -m devtools.embedded_db`, which provides DATABASE_URL. Ctrl-C stops all
processes started here (the embedded database is stopped by its runner).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / ".demo"
HOST, PORT = "127.0.0.1", 8000


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    DEMO_DIR.mkdir(exist_ok=True)
    key_file = DEMO_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    env.setdefault("DJANGO_SECRET_KEY", key_file.read_text().strip())
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    if "CELERY_BROKER_URL" not in env:
        env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/0" if _redis_reachable() else "filesystem://"
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    return out.stdout


def _banner(seed: dict[str, object]) -> str:
    envs = seed["environments"]
    assert isinstance(envs, dict)
    admin = seed["admin"]
    assert isinstance(admin, dict)
    prod = envs.get("production", {})
    client_key = prod.get("client_key", "")
    token = seed["management_token"]
    base = f"http://{HOST}:{PORT}"
    lines = [
        "",
        "Splitbase demo is running",
        f"  Admin UI        {base}/admin/   (login {admin['username']} / {admin['password']})",
        f"  Results pages   {base}/experiments/   (the demo experiment: {base}/experiments/checkout-redesign/)",
        f"  Flag pages      {base}/flags/   (usage, ramps, kill switch, stale flags)",
        f"  API docs        {base}/api/docs/",
        "  SDK keys:",
    ]
    for key, keys in envs.items():
        lines.append(f"    {key:<11} client {keys['client_key']}   server {keys['server_key']}")
    lines += [
        f"  Management token  {token}",
        "",
        "Try:",
        f"  curl -s -X POST {base}/ofrep/v1/evaluate/flags/new-checkout \\",
        f"       -H 'Authorization: Bearer {client_key}' -H 'Content-Type: application/json' \\",
        '       -d \'{"context": {"targetingKey": "user-42", "country": "DE"}}\'',
        f"  curl -s {base}/api/features/{client_key}",
        f"  curl -s {base}/api/v1/flags -H 'Authorization: Bearer {token}'",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # A SIGTERM (from `kill`, or forwarded by the embedded database's wrapper) stops the server
    # and the worker as Ctrl-C does, instead of leaving them running without a database.
    signal.signal(signal.SIGTERM, _interrupt)
    env = _environment()
    os.chdir(ROOT)
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    seed = json.loads(_manage(env, "seed_demo", "--json"))
    # A demo experiment with simulated traffic, so result pages have data on first start.
    _manage(env, "seed_experiments")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py", "--bind", f"{HOST}:{PORT}"],
            env=env,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--schedule",
                str(DEMO_DIR / "celerybeat-schedule"),
            ],
            env=env,
        ),
    ]
    time.sleep(1.5)
    print(_banner(seed), flush=True)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
