"""Web-facing protections: the API docs behind a login, login throttling, secrets redacted from
logs, and a deployment check that is clean with the documented production settings."""

from __future__ import annotations

import io
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import override_settings
from rest_framework.test import APIClient

from base.models import Environment
from config.logs import RedactingGunicornLogger, RedactSecrets, redact

ROOT = Path(__file__).resolve().parents[3]


# API documentation -------------------------------------------------------------------------


def test_api_docs__anonymous__login_page_and_401(db: Any) -> None:
    client = Client()
    page = client.get("/api/docs/")
    assert page.status_code == 302 and page["Location"].startswith("/admin/login/?next=/api/docs/")
    schema = client.get("/api/schema/")
    assert schema.status_code in (401, 403)
    assert b"paths" not in schema.content


def test_api_docs__staff_session__served_from_the_installed_package(admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html and "@latest" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert client.get("/api/schema/").status_code == 200


def test_api_docs__management_token__schema_readable(read_client: APIClient) -> None:
    response = read_client.get("/api/schema/")
    assert response.status_code == 200 and b"/api/v1/flags" in response.content


def test_api_docs__non_staff_session__refused(db: Any) -> None:
    user = User.objects.create_user("visitor", password="pw-visitor-123")
    client = Client()
    client.force_login(user)
    assert client.get("/api/docs/").status_code == 302
    assert client.get("/api/schema/").status_code in (401, 403)


@override_settings(API_DOCS_ACCESS="public")
def test_api_docs__public_setting__open_to_anyone(db: Any) -> None:
    client = Client()
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/schema/").status_code == 200


# Login throttling ---------------------------------------------------------------------------


def _login(client: Client, password: str) -> Any:
    return client.post("/admin/login/?next=/admin/", {"username": "boss", "password": password},
                       REMOTE_ADDR="203.0.113.7")


@override_settings(AXES_FAILURE_LIMIT=3)
def test_admin_login__repeated_wrong_passwords__locked_out_even_with_the_right_one(admin_user: User) -> None:
    client = Client()
    for _ in range(2):
        assert _login(client, "wrong").status_code == 200  # the form again, with an error
    assert _login(client, "wrong").status_code == 429  # the third failure locks
    locked = _login(client, "pw-boss-123")
    assert locked.status_code in (403, 429)
    assert b"Too many wrong passwords" in locked.content
    assert "_auth_user_id" not in client.session
    other_address = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": "pw-boss-123"},
                                REMOTE_ADDR="198.51.100.9")
    assert other_address.status_code == 302  # the lock is per user name and address


@override_settings(AXES_FAILURE_LIMIT=3)
def test_admin_login__success_resets_the_count(admin_user: User) -> None:
    client = Client()
    _login(client, "wrong")
    _login(client, "wrong")
    assert _login(client, "pw-boss-123").status_code == 302
    client.logout()
    _login(client, "wrong")
    _login(client, "wrong")
    assert _login(client, "pw-boss-123").status_code == 302


def test_programmatic_login__without_a_request__still_works(admin_user: User) -> None:
    assert Client().login(username="boss", password="pw-boss-123")


# Secrets in logs ------------------------------------------------------------------------------


def test_redact__tokens_and_sdk_keys__replaced_by_a_fingerprint() -> None:
    token = "sbm_" + secrets.token_urlsafe(32)
    client_key = "sdk-client-" + secrets.token_urlsafe(18)
    text = redact(f"Forbidden: /api/features/{client_key} with Bearer {token}")
    assert token not in text and client_key not in text
    assert text.startswith("Forbidden: /api/features/sdk-client-[redacted:")
    assert "sbm_[redacted:" in text
    assert redact(f"{token}") == redact(f"{token}")  # the same key, the same fingerprint
    assert redact("nothing secret here") == "nothing secret here"


def _console_output() -> tuple[logging.Handler, io.StringIO, Any]:
    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, RedactSecrets) for f in h.filters))
    stream = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(stream)
    return handler, stream, previous


def test_request_log__forbidden_key_in_path__logged_redacted(environments: dict[str, Environment]) -> None:
    server_key = environments["production"].server_key
    handler, stream, previous = _console_output()
    try:
        response = Client().get(f"/api/features/{server_key}")
        assert response.status_code == 403
        logging.getLogger("splitbase.test").warning("token %s", "sbm_" + "A" * 43)
    finally:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(previous)
    output = stream.getvalue()
    assert "/api/features/sdk-server-[redacted:" in output
    assert server_key not in output and "A" * 43 not in output


def test_exception_log__secret_in_traceback__redacted() -> None:
    handler, stream, previous = _console_output()
    secret = "sbm_" + "B" * 43
    try:
        try:
            raise ValueError(f"bad token {secret}")
        except ValueError:
            logging.getLogger("splitbase.test").exception("failed")
    finally:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(previous)
    assert secret not in stream.getvalue() and "sbm_[redacted:" in stream.getvalue()


def test_gunicorn_logger__error_and_access_logs__carry_the_filter() -> None:
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("accesslog", "-")
    logger = RedactingGunicornLogger(cfg)
    for log in (logger.error_log, logger.access_log):
        assert log.handlers and all(any(isinstance(f, RedactSecrets) for f in h.filters) for h in log.handlers)


# Deployment check -------------------------------------------------------------------------------


def test_check_deploy__documented_production_settings__no_warning() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "flags.example.com",
        "DJANGO_SECURE_COOKIES": "true",
        "DJANGO_SSL_REDIRECT": "true",
        "DJANGO_HSTS_SECONDS": "31536000",
        "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "true",
        "DJANGO_HSTS_PRELOAD": "true",
        "DJANGO_BEHIND_TLS_PROXY": "true",
    })
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy__plain_http_settings__warns() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)})
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0 and "SECURE_HSTS_SECONDS" in done.stderr + done.stdout


@pytest.mark.parametrize("value", ["nope", ""])
def test_api_docs_access__bad_value__refused_at_start(value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "API_DOCS_ACCESS": value or "sometimes"})
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "API_DOCS_ACCESS" in done.stderr
