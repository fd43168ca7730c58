"""Per-process cache of compiled environment snapshots: the only state the hot path reads.

- **Freshness.** Every write bumps ``Environment.config_version``. A refresher thread of the
  process reads the versions of all environments every ``SNAPSHOT_CHECK_INTERVAL`` seconds
  (default 1 s) and recompiles an environment whose version moved (four queries, see
  ``flags.mappers``); requests meanwhile answer from the snapshot they have. A request never
  waits for the database, except the very first one of an environment in a new process, and
  that one at most ``SNAPSHOT_COLD_START_TIMEOUT`` seconds. (Tests run with
  ``SNAPSHOT_REFRESH = "inline"``: the check runs in the request, which can see the test's own
  transaction.)
- **Fail static.** When PostgreSQL is unreachable (refused, or silent) the cache keeps serving
  the last good snapshot and reports itself degraded (``status()``, shown by ``/readyz``). Each
  compiled snapshot is also written to ``SNAPSHOT_DIR`` as JSON (the GrowthBook payload form,
  which round-trips), with SHA-256 digests of the environment's keys rather than the keys, so a
  process started while the database is down serves what its predecessor served.
- **Bad configuration.** A snapshot that fails to compile never replaces the last good one:
  the environment keeps being served from it, and the failure is logged and reported by
  ``status()`` (``compile_failures``) until a later version compiles.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import Error as DatabaseError

from base.models import Environment
from config.metrics import SNAPSHOT_COMPILE_FAILURES
from flags import mappers
from flags.engine.evaluation import prerequisites_of
from flags.engine.gbformat import next_schedule_change, snapshot_from_payload, snapshot_to_payload
from flags.engine.privacy import REMOTE, ClientPolicy
from flags.engine.types import Snapshot
from serving.background import FlushThread, discard_connection
from serving.client_payloads import client_payload
from serving.files import private_directory

__all__ = ["CompiledEnvironment", "SdkKey", "SnapshotStore", "SnapshotUnavailable", "key_digest", "store"]

logger = logging.getLogger(__name__)

FILE_FORMAT = 1
# Shortest time between two version checks asked for by requests naming a newer version.
FORCED_CHECK_SPACING = 0.1
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
    """A snapshot plus what is derived from it once: the SDK payload bytes as client keys
    receive them (by the environment's ``policy``) and their ETag, valid until the next
    scheduled rule start or end."""

    __slots__ = ("_payload", "_prerequisites", "derived", "environment_id", "policy", "snapshot", "version")

    def __init__(self, environment_id: int, snapshot: Snapshot, policy: ClientPolicy | None = None) -> None:
        self.environment_id = environment_id
        self.snapshot = snapshot
        self.policy = policy or ClientPolicy()
        self.version = snapshot.version
        self._payload: tuple[float, bytes | None, str, float | None] | None = None
        self._prerequisites: dict[str, tuple[str, ...]] = {}
        # What an endpoint works out from the snapshot once (by the endpoint's name), e.g. the
        # OFREP items of the results that do not depend on the unit.
        self.derived: dict[str, Any] = {}

    @property
    def remote_only(self) -> bool:
        """Client keys get no payload: they evaluate remotely."""
        return self.policy.mode == REMOTE

    def used_by(self, keys: Iterable[str]) -> list[str]:
        """`keys` and the flags their evaluation goes through (prerequisites, transitively)."""
        out = list(keys)
        for key in tuple(out):
            found = self._prerequisites.get(key)
            if found is None:
                found = self._prerequisites[key] = prerequisites_of(self.snapshot, key)
            out.extend(found)
        return out

    def payload(self, now: float) -> tuple[bytes | None, str, float | None]:
        """The GrowthBook payload a client key is served at ``now`` (epoch seconds): body (None
        when client keys evaluate remotely only), ETag and the moment it goes stale (None: not
        before the next write). The ETag also tells versions apart when there is no body."""
        cached = self._payload
        if cached is not None and (cached[3] is None or now < cached[3]) and now >= cached[0]:
            return cached[1], cached[2], cached[3]
        full = snapshot_to_payload(self.snapshot, now=now)
        body = client_payload(full, self.policy)
        digest = hashlib.blake2b(body if body is not None else orjson.dumps(full), digest_size=10).hexdigest()
        etag = f'"{self.version}-{digest}"'
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
        self._checked_once = False
        self._last_answer = time.monotonic()  # when the database last answered a check
        self._compile_failures: dict[int, tuple[int, str]] = {}  # environment -> (version, error)
        self._wanted: set[int] = set()  # environments a request waits for
        self._chased: dict[int, int] = {}  # environment -> version a request waits for
        self._forced_at = 0.0
        self._refreshed = threading.Condition(threading.Lock())
        self._refresher = FlushThread("snapshot-refresh", self._refresh_interval, self._refresh_round)

    # --- the hot path ----------------------------------------------------------------

    def resolve(self, raw_key: str) -> tuple[SdkKey, CompiledEnvironment] | None:
        """The key's environment and its current snapshot; None for an unknown key.
        Raises SnapshotUnavailable only when nothing at all can be served."""
        return self.resolve_digest(key_digest(raw_key))

    def resolve_digest(self, digest: str) -> tuple[SdkKey, CompiledEnvironment] | None:
        """``resolve`` for a key known by its SHA-256 digest."""
        if settings.SNAPSHOT_REFRESH == "inline":
            return self._resolve_inline(digest)
        self._refresher.ensure_started()
        if time.monotonic() >= self._next_check:
            self._refresher.wake()
        if not self._checked_once:
            self._wait_for(lambda: self._checked_once)
        info = self._keys.get(digest)
        if info is None:
            self._refresher.wake()  # a key created since the last check is known a moment later
            self._refuse_when_blind()
            return None
        env_id = info.environment_id
        compiled = self._compiled.get(env_id)
        if compiled is None:
            with self._lock:
                self._wanted.add(env_id)
            self._refresher.wake()
            self._wait_for(lambda: env_id in self._compiled)
            compiled = self._compiled.get(env_id) or self._from_file(env_id)
            if compiled is None:
                raise SnapshotUnavailable("The environment's snapshot could not be loaded in time.")
        return info, compiled

    def _resolve_inline(self, digest: str) -> tuple[SdkKey, CompiledEnvironment] | None:
        if time.monotonic() >= self._next_check:
            self._check()
        info = self._keys.get(digest)
        if info is None:
            self._refuse_when_blind()
            return None
        compiled = self._compiled.get(info.environment_id)
        if compiled is None or compiled.version < self._versions.get(info.environment_id, 0):
            compiled = self._load(info.environment_id)
            if compiled is None:
                return None
        return info, compiled

    def _refuse_when_blind(self) -> None:
        """An unknown key is a 401, unless no key at all can be checked (a 503)."""
        if not self._keys and self._degraded_since is not None:
            raise SnapshotUnavailable("No key can be checked: the database is down and no snapshot is on disk.")

    def _wait_for(self, ready: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait for the refresher (a cold start), at most ``timeout`` seconds
        (SNAPSHOT_COLD_START_TIMEOUT by default)."""
        if timeout is None:
            timeout = float(settings.SNAPSHOT_COLD_START_TIMEOUT)
        deadline = time.monotonic() + timeout
        with self._refreshed:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0 or (self._degraded_since is not None and self._checked_once):
                    return
                self._refreshed.wait(min(left, 0.5))

    # --- change notifications ----------------------------------------------------------

    def current(self, environment_id: int) -> CompiledEnvironment | None:
        """The snapshot this process serves for an environment now (no database access)."""
        return self._compiled.get(environment_id)

    def known_key(self, digest: str) -> SdkKey | None:
        """The key with this SHA-256 digest, while it is valid (no database access)."""
        return self._keys.get(digest)

    def keys(self) -> Mapping[str, SdkKey]:
        """Every valid key by digest, once the keys were read (a new process waits for its first
        check, at most SNAPSHOT_COLD_START_TIMEOUT seconds). The mapping is replaced, never
        changed, when keys change."""
        if settings.SNAPSHOT_REFRESH == "inline":
            if time.monotonic() >= self._next_check:
                self._check()
        elif not self._checked_once:
            self._refresher.ensure_started()
            self._refresher.wake()
            self._wait_for(lambda: self._checked_once)
        return self._keys

    def catch_up(self, environment_id: int, version: int) -> CompiledEnvironment | None:
        """Serve at least ``version`` of an environment now, without waiting for the next check
        (a change notification named it): versions and keys are read again and the
        environment compiled. None when it no longer exists. Blocks on the database: call it
        from a thread."""
        with self._lock:
            current = self._compiled.get(environment_id)
            if current is None or current.version < version or version <= 0:
                self._next_check = 0.0
                self._check()
            if environment_id not in self._versions:
                return None
            return self._load(environment_id)

    def serve_at_least(self, environment_id: int, version: int, timeout: float) -> CompiledEnvironment | None:
        """Wait at most ``timeout`` seconds until this process serves ``version`` of the
        environment (a client was told of that version by a stream): the refresher checks at
        once rather than at the end of its interval. The snapshot served then, newer or not."""
        current = self._compiled.get(environment_id)
        if current is not None and current.version >= version:
            return current
        if settings.SNAPSHOT_REFRESH == "inline":
            return self.catch_up(environment_id, version)
        with self._lock:
            self._chased[environment_id] = max(version, self._chased.get(environment_id, 0))
        self._refresher.ensure_started()
        self._refresher.wake()

        def served() -> bool:
            compiled = self._compiled.get(environment_id)
            return compiled is not None and compiled.version >= version

        self._wait_for(served, timeout)
        return self._compiled.get(environment_id)

    # --- the refresher thread ----------------------------------------------------------

    def _refresh_interval(self) -> float:
        return max(float(settings.SNAPSHOT_CHECK_INTERVAL), 0.05)

    def _refresh_round(self) -> None:
        """Check the versions, then compile what moved or what a request waits for."""
        try:
            with self._lock:
                chased, self._chased = self._chased, {}
                behind = any(self._versions.get(env_id, 0) < version for env_id, version in chased.items())
                now = time.monotonic()
                if behind and now - self._forced_at >= FORCED_CHECK_SPACING:
                    # A client names a newer version than the last check saw: look now (at most
                    # every FORCED_CHECK_SPACING seconds, whatever versions clients name).
                    self._next_check, self._forced_at = 0.0, now
            self._check()
            with self._lock:
                stale = {i for i, c in self._compiled.items() if c.version < self._versions.get(i, 0)}
                todo = (stale | self._wanted) & set(self._versions)
                self._wanted -= todo
            for env_id in sorted(todo):
                self._load(env_id)
        finally:
            self._checked_once = True
            with self._refreshed:
                self._refreshed.notify_all()

    # --- state for probes and tests ----------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``state`` is ``ok``, or ``degraded`` while the database cannot be read and
        answers come from the last good snapshots; ``compile_failures`` names environments
        whose newest configuration does not compile (they are served their last good one)."""
        out: dict[str, Any] = {
            "state": "degraded" if self._degraded_since is not None else "ok",
            "environments": {c.snapshot.environment: c.version for c in self._compiled.values()},
        }
        if self._degraded_since is not None:
            out["degraded_for_seconds"] = round(time.time() - self._degraded_since, 1)
            out["error"] = self._error
        elif self.silent_for() > float(settings.SNAPSHOT_STALE_AFTER):
            out["state"] = "degraded"
            out["degraded_for_seconds"] = round(self.silent_for(), 1)
            out["error"] = "no answer from the database"
        if self._compile_failures:
            names = {c.environment_id: c.snapshot.environment for c in self._compiled.values()}
            out["compile_failures"] = {
                names.get(env_id, str(env_id)): {"version": version, "error": error}
                for env_id, (version, error) in self._compile_failures.items()
            }
        return out

    def refresh(self) -> None:
        """Run the version check now if it is due (the readiness probe calls this, so that a
        process without SDK traffic still notices the database coming back)."""
        if time.monotonic() < self._next_check:
            return
        if settings.SNAPSHOT_REFRESH == "inline":
            self._check()
        else:
            self._refresher.ensure_started()
            self._refresher.wake()

    @property
    def degraded(self) -> bool:
        return self._degraded_since is not None

    def silent_for(self) -> float:
        """Seconds since the database last answered a version check (background mode; a check
        stuck on a silent network does not fail, it just never answers)."""
        if settings.SNAPSHOT_REFRESH == "inline":
            return 0.0
        return time.monotonic() - self._last_answer

    def database_unreachable(self) -> bool:
        """The database refused the last check, or has not answered one for SNAPSHOT_STALE_AFTER
        seconds: writes on the request path would only hang or fail."""
        return self.degraded or self.silent_for() > float(settings.SNAPSHOT_STALE_AFTER)

    def reset(self) -> None:
        """Forget everything in memory (the files on disk stay)."""
        with self._lock:
            self._keys, self._versions, self._compiled, self._retry_at = {}, {}, {}, {}
            self._next_check = 0.0
            self._degraded_since, self._error = None, ""
            self._checked_once, self._compile_failures, self._wanted = False, {}, set()
            self._chased, self._forced_at = {}, 0.0

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
            self._last_answer = time.monotonic()
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

    def _load(self, env_id: int) -> CompiledEnvironment | None:
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
                policy = mappers.client_policy(environment=env)
            except DatabaseError as exc:
                self._failed(exc)
                self._retry_at[env_id] = time.monotonic() + float(settings.SNAPSHOT_RETRY_INTERVAL)
                fallback = current or self._read_file(env_id)
                if fallback is None:
                    raise SnapshotUnavailable(str(exc)) from exc
                self._compiled[env_id] = fallback
                return fallback
            except Exception as exc:  # a configuration the compiler refuses: keep the last good one
                return self._compile_failed(env_id, wanted, current, exc)
            self._compile_failures.pop(env_id, None)
            compiled = CompiledEnvironment(env_id, snapshot, policy)
            self._compiled[env_id] = compiled
            self._versions[env_id] = max(wanted, snapshot.version)
            self._retry_at.pop(env_id, None)
            self._write_file(compiled)
            return compiled

    def _compile_failed(
        self, env_id: int, version: int, current: CompiledEnvironment | None, exc: Exception
    ) -> CompiledEnvironment | None:
        if self._compile_failures.get(env_id, (None,))[0] != version:
            SNAPSHOT_COMPILE_FAILURES.labels(current.snapshot.environment if current else str(env_id)).inc()
            logger.error("The snapshot of environment %s (version %s) does not compile; serving the last good one: "
                         "%s: %s", env_id, version, type(exc).__name__, str(exc)[:500])
        self._compile_failures[env_id] = (version, f"{type(exc).__name__}: {str(exc)[:500]}")
        self._retry_at[env_id] = time.monotonic() + float(settings.SNAPSHOT_RETRY_INTERVAL)
        fallback = current or self._read_file(env_id)
        if fallback is None:
            raise SnapshotUnavailable(f"The configuration does not compile: {type(exc).__name__}") from exc
        self._compiled[env_id] = fallback
        return fallback

    def _from_file(self, env_id: int) -> CompiledEnvironment | None:
        with self._lock:
            loaded = self._read_file(env_id)
            if loaded is not None:
                self._compiled.setdefault(env_id, loaded)
            return self._compiled.get(env_id)

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
            "metadata": compiled.snapshot.metadata,
            "client": compiled.policy.to_json(),
        }
        path = self._path(compiled.environment_id)
        tmp: str | None = None
        try:
            raw = orjson.dumps(document)  # before any file exists: a failure leaves nothing behind
            private_directory(path.parent)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-", suffix=".tmp")  # mode 0600
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
            os.replace(tmp, path)
            tmp = None
        except (OSError, TypeError, orjson.JSONEncodeError) as exc:
            logger.warning("Could not write the snapshot of %s to %s: %s", compiled.snapshot.environment, path, exc)
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

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
        metadata = document.get("metadata")
        if isinstance(metadata, dict):
            snapshot = dataclasses.replace(snapshot, metadata=metadata)
        keys = {str(d): SdkKey(env_id, env_key, str(kind)) for d, kind in document["keys"].items()}
        policy = ClientPolicy.from_json(document.get("client"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("Ignoring unreadable snapshot file %s: %s", path, exc)
        return None
    return keys, CompiledEnvironment(env_id, snapshot, policy)


store = SnapshotStore()
