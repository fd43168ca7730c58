"""Per-process cache of compiled environment snapshots: the only state the hot path reads.

- **Freshness.** Every write bumps ``Environment.config_version``. At most once per
  ``SNAPSHOT_CHECK_INTERVAL`` seconds (default 1 s) a request runs one query for the versions
  of all environments; an environment whose version moved is recompiled on its next request
  (four queries, see ``flags.mappers``). SDK keys are re-read only when a version or the set
  of environments changes (rotating keys bumps the version).
- **Fail static.** When PostgreSQL is unreachable the cache keeps serving the last good
  snapshot and reports itself degraded (``status()``, shown by ``/readyz``); it retries every
  ``SNAPSHOT_RETRY_INTERVAL`` seconds instead of on every request. Each compiled snapshot is
  also written to ``SNAPSHOT_DIR`` as JSON (the GrowthBook payload form, which round-trips),
  with SHA-256 digests of the environment's keys rather than the keys, so a process started
  while the database is down serves what its predecessor served.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import Error as DatabaseError

from base.models import Environment
from flags import mappers
from flags.engine.evaluation import prerequisites_of
from flags.engine.gbformat import next_schedule_change, snapshot_from_payload, snapshot_to_payload
from flags.engine.types import Snapshot
from serving.background import discard_connection

__all__ = ["CompiledEnvironment", "SdkKey", "SnapshotStore", "SnapshotUnavailable", "key_digest", "store"]

logger = logging.getLogger(__name__)

FILE_FORMAT = 1
CLIENT, SERVER = "client", "server"


class SnapshotUnavailable(Exception):
    """No snapshot in memory or on disk, and the database cannot be read."""


def key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class SdkKey:
    """What an SDK key opens: one environment, as a public client or a secret server key."""

    environment_id: int
    environment: str
    kind: str


class CompiledEnvironment:
    """A snapshot plus what is derived from it once: the SDK payload bytes and their ETag,
    valid until the next scheduled rule start or end."""

    __slots__ = ("_payload", "_prerequisites", "environment_id", "snapshot", "version")

    def __init__(self, environment_id: int, snapshot: Snapshot) -> None:
        self.environment_id = environment_id
        self.snapshot = snapshot
        self.version = snapshot.version
        self._payload: tuple[float, bytes, str, float | None] | None = None
        self._prerequisites: dict[str, tuple[str, ...]] = {}

    def used_by(self, keys: Iterable[str]) -> list[str]:
        """`keys` and the flags their evaluation goes through (prerequisites, transitively)."""
        out = list(keys)
        for key in tuple(out):
            found = self._prerequisites.get(key)
            if found is None:
                found = self._prerequisites[key] = prerequisites_of(self.snapshot, key)
            out.extend(found)
        return out

    def payload(self, now: float) -> tuple[bytes, str, float | None]:
        """The GrowthBook payload as served at ``now`` (epoch seconds): body, ETag and the
        moment it goes stale (None: not before the next write)."""
        cached = self._payload
        if cached is not None and (cached[3] is None or now < cached[3]) and now >= cached[0]:
            return cached[1], cached[2], cached[3]
        body = orjson.dumps(snapshot_to_payload(self.snapshot, now=now))
        etag = f'"{self.version}-{hashlib.blake2b(body, digest_size=10).hexdigest()}"'
        until = next_schedule_change(self.snapshot, now)
        self._payload = (now, body, etag, until)
        return body, etag, until


class SnapshotStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._keys: dict[str, SdkKey] = {}
        self._versions: dict[int, int] = {}
        self._compiled: dict[int, CompiledEnvironment] = {}
        self._retry_at: dict[int, float] = {}
        self._next_check = 0.0
        self._degraded_since: float | None = None
        self._error = ""

    # --- the hot path ----------------------------------------------------------------

    def resolve(self, raw_key: str) -> tuple[SdkKey, CompiledEnvironment] | None:
        """The key's environment and its current snapshot; None for an unknown key.
        Raises SnapshotUnavailable only when nothing at all can be served."""
        if time.monotonic() >= self._next_check:
            self._check()
        info = self._keys.get(key_digest(raw_key))
        if info is None:
            if not self._keys and self._degraded_since is not None:
                raise SnapshotUnavailable("No key can be checked: the database is down and no snapshot is on disk.")
            return None
        compiled = self._compiled.get(info.environment_id)
        if compiled is None or compiled.version < self._versions.get(info.environment_id, 0):
            compiled = self._load(info)
            if compiled is None:
                return None
        return info, compiled

    # --- state for probes and tests ----------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``state`` is ``ok``, or ``degraded`` while the database cannot be read and
        answers come from the last good snapshots."""
        out: dict[str, Any] = {
            "state": "degraded" if self._degraded_since is not None else "ok",
            "environments": {c.snapshot.environment: c.version for c in self._compiled.values()},
        }
        if self._degraded_since is not None:
            out["degraded_for_seconds"] = round(time.time() - self._degraded_since, 1)
            out["error"] = self._error
        return out

    def refresh(self) -> None:
        """Run the version check now if it is due (the readiness probe calls this, so that a
        process without SDK traffic still notices the database coming back)."""
        if time.monotonic() >= self._next_check:
            self._check()

    @property
    def degraded(self) -> bool:
        return self._degraded_since is not None

    def reset(self) -> None:
        """Forget everything in memory (the files on disk stay)."""
        with self._lock:
            self._keys, self._versions, self._compiled, self._retry_at = {}, {}, {}, {}
            self._next_check = 0.0
            self._degraded_since, self._error = None, ""

    # --- database ----------------------------------------------------------------------

    def _check(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next_check:
                return
            try:
                versions = dict(Environment.objects.values_list("id", "config_version"))
                if versions != self._versions or not self._keys:
                    keys = self._read_keys()
                else:
                    keys = self._keys
            except DatabaseError as exc:
                self._failed(exc)
                if not self._keys:
                    self._load_directory()
                return
            self._versions, self._keys = versions, keys
            self._compiled = {i: c for i, c in self._compiled.items() if i in versions}
            self._recovered()
            self._next_check = now + float(settings.SNAPSHOT_CHECK_INTERVAL)

    @staticmethod
    def _read_keys() -> dict[str, SdkKey]:
        keys: dict[str, SdkKey] = {}
        for env_id, env_key, client_key, server_key in Environment.objects.values_list(
            "id", "key", "client_key", "server_key"
        ):
            keys[key_digest(client_key)] = SdkKey(env_id, env_key, CLIENT)
            keys[key_digest(server_key)] = SdkKey(env_id, env_key, SERVER)
        return keys

    def _load(self, info: SdkKey) -> CompiledEnvironment | None:
        env_id = info.environment_id
        with self._lock:
            current = self._compiled.get(env_id)
            wanted = self._versions.get(env_id, 0)
            if current is not None and current.version >= wanted:
                return current
            if current is not None and time.monotonic() < self._retry_at.get(env_id, 0.0):
                return current
            try:
                env = Environment.objects.filter(pk=env_id).first()
                if env is None:
                    self._keys = {d: k for d, k in self._keys.items() if k.environment_id != env_id}
                    return None
                snapshot = mappers.environment_snapshot(environment=env)
            except DatabaseError as exc:
                self._failed(exc)
                self._retry_at[env_id] = time.monotonic() + float(settings.SNAPSHOT_RETRY_INTERVAL)
                fallback = current or self._read_file(env_id)
                if fallback is None:
                    raise SnapshotUnavailable(str(exc)) from exc
                self._compiled[env_id] = fallback
                return fallback
            compiled = CompiledEnvironment(env_id, snapshot)
            self._compiled[env_id] = compiled
            self._versions[env_id] = max(wanted, snapshot.version)
            self._retry_at.pop(env_id, None)
            self._write_file(compiled)
            return compiled

    def _failed(self, exc: Exception) -> None:
        if self._degraded_since is None:
            logger.error("Database unreachable, serving the last good snapshots: %s", exc)
            self._degraded_since = time.time()
        self._error = type(exc).__name__
        self._next_check = time.monotonic() + float(settings.SNAPSHOT_RETRY_INTERVAL)
        discard_connection()

    def _recovered(self) -> None:
        if self._degraded_since is not None:
            logger.warning("Database reachable again after %.1f s.", time.time() - self._degraded_since)
        self._degraded_since, self._error = None, ""

    # --- disk --------------------------------------------------------------------------

    @staticmethod
    def directory() -> Path:
        return Path(settings.SNAPSHOT_DIR)

    def _path(self, env_id: int) -> Path:
        return self.directory() / f"environment-{env_id}.json"

    def _write_file(self, compiled: CompiledEnvironment) -> None:
        keys = {digest: k.kind for digest, k in self._keys.items() if k.environment_id == compiled.environment_id}
        document = {
            "format": FILE_FORMAT,
            "environment_id": compiled.environment_id,
            "environment": compiled.snapshot.environment,
            "version": compiled.version,
            "keys": keys,
            "saved_at": time.time(),
            "snapshot": snapshot_to_payload(compiled.snapshot),
        }
        path = self._path(compiled.environment_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-", suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(orjson.dumps(document))
            os.replace(tmp, path)
        except OSError as exc:
            logger.warning("Could not write the snapshot of %s to %s: %s", compiled.snapshot.environment, path, exc)

    def _read_file(self, env_id: int) -> CompiledEnvironment | None:
        loaded = _parse_file(self._path(env_id))
        return loaded[1] if loaded is not None else None

    def _load_directory(self) -> None:
        """Start from the files of an earlier process (the database is down)."""
        directory = self.directory()
        if not directory.is_dir():
            return
        for path in sorted(directory.glob("environment-*.json")):
            loaded = _parse_file(path)
            if loaded is None:
                continue
            keys, compiled = loaded
            self._keys.update(keys)
            self._compiled[compiled.environment_id] = compiled
            self._versions[compiled.environment_id] = compiled.version
        if self._compiled:
            logger.warning("Serving %d environment(s) from snapshot files in %s.", len(self._compiled), directory)


def _parse_file(path: Path) -> tuple[dict[str, SdkKey], CompiledEnvironment] | None:
    try:
        document = orjson.loads(path.read_bytes())
        if document.get("format") != FILE_FORMAT:
            return None
        env_id, env_key = int(document["environment_id"]), str(document["environment"])
        version = int(document["version"])
        snapshot = snapshot_from_payload(document["snapshot"], environment=env_key, version=version)
        keys = {str(d): SdkKey(env_id, env_key, str(kind)) for d, kind in document["keys"].items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("Ignoring unreadable snapshot file %s: %s", path, exc)
        return None
    return keys, CompiledEnvironment(env_id, snapshot)


store = SnapshotStore()
