"""Exposures seen by the evaluation endpoints, written in batches and never lost.

A request only appends to an in-memory list (after dropping a unit already seen in the same
experiment in the last minute or so); a background thread per process hands the list to the
recorder every ``EXPOSURE_FLUSH_INTERVAL`` seconds. When the recorder fails (the database is
down) the batch goes to a JSON-lines spool file under ``SNAPSHOT_DIR/exposures``; spool files
are replayed, oldest first, as soon as a write succeeds again, by whichever process gets there
first (a file is claimed by renaming it). The recorder is idempotent per unit and experiment,
so a batch replayed twice after a crash does no harm. On exit the in-memory list is spooled.

Each exposure carries its environment's id from the evaluation to the row; spool lines that
lack the id and name only the environment's key are resolved with one lookup per file.
The recorder is the experiments app's (``ExposureBuffer.recorder``, a callable that takes a
sequence of :class:`ServedExposure` and raises on failure).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import Error as DatabaseError

from experiments.exposures import ServedExposure, served_exposures_load, serving_exposures_record
from flags.engine.types import Evaluation
from serving.background import FlushThread, discard_connection
from serving.snapshots import SdkKey
from traffic.assignment.bucketing import hash_string

__all__ = ["ExposureBuffer", "buffer", "exposures_of", "track"]

logger = logging.getLogger(__name__)

Recorder = Callable[[Sequence[ServedExposure]], object]

# A unit seen in an experiment is not queued again for this long (the recorder deduplicates
# anyway; this only spares it the repeats of busy units). Entries are 64-bit hashes, so two
# generations of DEDUP_MAX cost a few megabytes.
DEDUP_SECONDS = 60.0
DEDUP_MAX = 100_000
# A claimed spool file whose process died, or that was claimed this long ago, is retried.
STALE_CLAIM_SECONDS = 300.0


def exposures_of(
    environment: SdkKey, evaluations: Iterable[Evaluation], attributes: Mapping[str, Any]
) -> list[ServedExposure]:
    """Exposures of a unit placed in an experiment variation (not units left out by coverage
    or a namespace, and not passthrough variations)."""
    now = time.time()
    out: list[ServedExposure] = []
    for ev in evaluations:
        assignment = ev.experiment
        if assignment is None or not assignment.in_experiment or not assignment.hash_used or assignment.passthrough:
            continue
        out.append(
            ServedExposure(
                environment_id=environment.environment_id,
                environment=environment.environment,
                experiment=assignment.key,
                variation=assignment.variation_key,
                variation_index=assignment.variation_id,
                unit_id=hash_string(assignment.hash_value),
                hash_attribute=assignment.hash_attribute,
                flag=ev.key,
                rule_id=ev.rule_id,
                timestamp=now,
                attributes=attributes,
            )
        )
    return out


def track(environment: SdkKey, evaluations: Iterable[Evaluation], attributes: Mapping[str, Any]) -> int:
    """Queue the exposures of an evaluation; returns how many were new to this process."""
    exposures = exposures_of(environment, evaluations, attributes)
    return buffer.add(exposures) if exposures else 0


class ExposureBuffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        # What writes a batch to the database; tests put a stand-in here.
        self.recorder: Recorder = serving_exposures_record
        self._pending: list[ServedExposure] = []
        self._seen: set[int] = set()
        self._seen_before: set[int] = set()
        self._seen_rotated = time.monotonic()
        self._flusher = FlushThread("exposure-flush", lambda: float(settings.EXPOSURE_FLUSH_INTERVAL), self.flush)
        self.recorded = 0

    # --- request side ------------------------------------------------------------------

    def add(self, exposures: Iterable[ServedExposure]) -> int:
        """Queue exposures not seen recently; returns how many were queued."""
        queued = 0
        spill: list[ServedExposure] = []
        with self._lock:
            self._rotate_seen()
            for exposure in exposures:
                dedup = hash((exposure.environment_id, exposure.experiment, exposure.unit_id))
                if dedup in self._seen or dedup in self._seen_before:
                    continue
                self._seen.add(dedup)
                self._pending.append(exposure)
                queued += 1
            if len(self._pending) >= int(settings.EXPOSURE_BUFFER_MAX):
                spill, self._pending = self._pending, []
        if spill:
            # More than the thread can keep up with (or the database is down): to disk.
            self._spool_or_keep(spill)
        if queued:
            self.ensure_started()
        return queued

    def _rotate_seen(self) -> None:
        now = time.monotonic()
        if now - self._seen_rotated >= DEDUP_SECONDS or len(self._seen) >= DEDUP_MAX:
            self._seen_before, self._seen = self._seen, set()
            self._seen_rotated = now

    def ensure_started(self) -> None:
        """Start this process's flush thread (once per process, also after a fork)."""
        self._flusher.ensure_started()

    # --- flushing ----------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._pending)

    def spooled(self) -> int:
        directory = self.directory()
        return len(list(directory.glob("*.jsonl"))) if directory.is_dir() else 0

    def flush(self) -> bool:
        """Write what is queued, then replay spool files. True when everything was written."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if batch and not self._record(batch):
                self._spool_or_keep(batch)
                return False
            return self._replay()

    def _record(self, batch: Sequence[ServedExposure]) -> bool:
        try:
            self.recorder(batch)
        except DatabaseError as exc:
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
            logger.warning("%d exposure(s) kept for later: %s", len(batch), first_line)
            discard_connection()
            return False
        except Exception:
            logger.exception("Writing %d exposure(s) failed; they are kept for later.", len(batch))
            discard_connection()
            return False
        self.recorded += len(batch)
        return True

    def _replay(self) -> bool:
        directory = self.directory()
        if not directory.is_dir():
            return True
        self._release_stale_claims(directory)
        for path in sorted(directory.glob("spool-*.jsonl")):
            claimed = path.with_name(f"claimed-{os.getpid()}-{path.name}")
            try:
                path.rename(claimed)
            except OSError:
                continue  # another process took it
            try:
                records = [orjson.loads(line) for line in claimed.read_bytes().splitlines() if line]
                batch = served_exposures_load(records)
            except DatabaseError as exc:
                logger.warning("Exposure spool file %s kept for later: %s", path.name, type(exc).__name__)
                discard_connection()
                claimed.rename(path)
                return False
            except (OSError, ValueError, TypeError, KeyError) as exc:
                logger.error("Unreadable exposure spool file %s (%s); moved aside.", claimed, exc)
                claimed.rename(claimed.with_suffix(".bad"))
                continue
            if len(batch) < len(records):
                logger.warning("%d exposure(s) of %s name an environment that no longer exists; dropped.",
                               len(records) - len(batch), path.name)
            if batch and not self._record(batch):
                claimed.rename(path)
                return False
            claimed.unlink(missing_ok=True)
        return True

    def _release_stale_claims(self, directory: Path) -> None:
        now = time.time()
        for path in directory.glob("claimed-*.jsonl"):
            _, pid_text, original = path.name.split("-", 2)
            try:
                alive = _process_alive(int(pid_text)) and now - path.stat().st_mtime < STALE_CLAIM_SECONDS
                if not alive:
                    path.rename(path.with_name(original))
            except (OSError, ValueError):
                continue

    def _spool_or_keep(self, batch: Sequence[ServedExposure]) -> None:
        try:
            self._spool(batch)
        except OSError:
            logger.exception("Could not spool %d exposure(s); keeping them in memory.", len(batch))
            with self._lock:
                self._pending[:0] = batch

    def _spool(self, batch: Sequence[ServedExposure]) -> None:
        directory = self.directory()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"spool-{time.time_ns():020d}-{os.getpid()}.jsonl"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            for exposure in batch:
                handle.write(orjson.dumps(exposure.as_json()) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        logger.warning("Spooled %d exposure(s) to %s.", len(batch), path)

    def spill(self) -> None:
        """Move what is queued in memory to disk (at exit, with no database round trip)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            try:
                self._spool(batch)
            except OSError:
                logger.exception("Could not spool %d exposure(s) at exit.", len(batch))

    def reset(self) -> None:
        with self._lock:
            self._pending = []
            self._seen, self._seen_before = set(), set()
        self.recorded = 0

    @staticmethod
    def directory() -> Path:
        return Path(settings.SNAPSHOT_DIR) / "exposures"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


buffer = ExposureBuffer()
atexit.register(buffer.spill)
