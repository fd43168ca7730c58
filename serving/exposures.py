"""Exposures seen by the evaluation endpoints, written in batches and never lost.

- **Journal.** A request appends its exposures (after dropping a unit already seen in the same
  experiment in the last minute or so) to an in-memory list and, as JSON lines, to this
  process's journal file under ``SNAPSHOT_DIR/exposures``: a process killed outright (SIGKILL,
  an out-of-memory kill) leaves its exposures on disk, and the next process to flush adopts the
  journal of a process that is gone.
- **Flush.** A background thread per process hands the list to the experiments app every
  ``EXPOSURE_FLUSH_INTERVAL`` seconds. The journal segment of that batch is closed first; once
  the batch is written it is deleted, and if the database is unreachable it becomes a spool
  file, replayed oldest first as soon as a write succeeds again (by whichever process gets
  there first: a file is claimed by renaming it). Recording is idempotent per unit and
  experiment, so a batch written twice after a crash does no harm.
- **Bad records.** A record the database refuses (as opposed to a database that cannot be
  reached) is found by splitting the batch, set aside in a ``rejected-*.jsonl`` file with the
  error, and logged; the rest of the batch is written.

Each exposure carries its environment's id from the evaluation to the row; spool lines that
lack the id and name only the environment's key are resolved with one lookup per file. Files
are private to the service's user: the directory is created 0700, files 0600.
"""

from __future__ import annotations

import atexit
import contextlib
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
from django.db import InterfaceError, OperationalError

from config.metrics import EXPOSURES
from experiments.exposures import ServedExposure, served_exposures_load, serving_exposures_record
from flags.engine.types import Evaluation, ExperimentAssignment
from serving.background import FlushThread, discard_connection
from serving.files import open_private, private_directory
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
# Errors that say the database cannot be reached (keep the batch), as opposed to a refused record.
UNAVAILABLE = (OperationalError, InterfaceError)


def exposures_of(
    environment: SdkKey, evaluations: Iterable[Evaluation], attributes: Mapping[str, Any]
) -> list[ServedExposure]:
    """Exposures of a unit placed in an experiment variation (not units left out by coverage
    or a namespace), passthrough variations included: the unit was counted there before the
    next rules served it."""
    now = time.time()
    out: list[ServedExposure] = []
    for ev in evaluations:
        for assignment in (*ev.passthrough, ev.experiment) if ev.passthrough else (ev.experiment,):
            if assignment is not None and assignment.in_experiment and assignment.hash_used:
                out.append(_served(environment, ev, assignment, attributes, now))
    return out


def _served(environment: SdkKey, ev: Evaluation, assignment: ExperimentAssignment, attributes: Mapping[str, Any],
            now: float) -> ServedExposure:
    return ServedExposure(
        environment_id=environment.environment_id,
        environment=environment.environment,
        experiment=assignment.key,
        variation=assignment.variation_key,
        variation_index=assignment.variation_id,
        unit_id=hash_string(assignment.hash_value),
        hash_attribute=assignment.hash_attribute,
        flag=ev.key,
        # The rule that served the value (a passthrough's own rule did not).
        rule_id=None if assignment.passthrough else ev.rule_id,
        timestamp=now,
        attributes=attributes,
    )


def track(environment: SdkKey, evaluations: Iterable[Evaluation], attributes: Mapping[str, Any]) -> int:
    """Queue the exposures of an evaluation; returns how many were new to this process."""
    exposures = exposures_of(environment, evaluations, attributes)
    return buffer.add(exposures) if exposures else 0


class ExposureBuffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[ServedExposure] = []
        self._seen: set[int] = set()
        self._seen_before: set[int] = set()
        self._seen_rotated = time.monotonic()
        self._flusher = FlushThread("exposure-flush", lambda: float(settings.EXPOSURE_FLUSH_INTERVAL), self.flush)
        self._journal: int | None = None  # file descriptor of this process's open journal segment
        self._journal_path: Path | None = None
        self._journal_pid = 0
        self._segment: Path | None = None  # the journal segment of the batch just taken
        # Where batches go; tests put a failing one in its place.
        self.recorder: Recorder = serving_exposures_record
        self.recorded = 0
        self.rejected = 0

    # --- request side ------------------------------------------------------------------

    def add(self, exposures: Iterable[ServedExposure]) -> int:
        """Queue exposures not seen recently (and journal them); returns how many were queued."""
        queued: list[ServedExposure] = []
        spill: list[ServedExposure] = []
        spill_segment: Path | None = None
        with self._lock:
            self._rotate_seen()
            for exposure in exposures:
                dedup = hash((exposure.environment_id, exposure.experiment, exposure.unit_id))
                if dedup in self._seen or dedup in self._seen_before:
                    continue
                self._seen.add(dedup)
                queued.append(exposure)
            if queued:
                self._pending.extend(queued)
                self._journal_write(queued)
                EXPOSURES.labels("buffered").inc(len(queued))
            if len(self._pending) >= int(settings.EXPOSURE_BUFFER_MAX):
                spill = self._take()
                spill_segment, self._segment = self._segment, None
        if spill:
            # More than the thread can keep up with (or the database is down): to disk.
            self._keep(spill, spill_segment)
        if queued:
            self.ensure_started()
        return len(queued)

    def _rotate_seen(self) -> None:
        now = time.monotonic()
        if now - self._seen_rotated >= DEDUP_SECONDS or len(self._seen) >= DEDUP_MAX:
            self._seen_before, self._seen = self._seen, set()
            self._seen_rotated = now

    def ensure_started(self) -> None:
        """Start this process's flush thread (once per process, also after a fork)."""
        self._flusher.ensure_started()

    # --- the journal ---------------------------------------------------------------------

    def _journal_write(self, exposures: Sequence[ServedExposure]) -> None:
        """Append to this process's open segment (the caller holds the lock). A failure to
        write it costs only the crash protection of these exposures: they are queued anyway."""
        pid = os.getpid()
        try:
            if self._journal is None or self._journal_pid != pid:
                directory = private_directory(self.directory())
                self._journal_path = directory / f"journal-{pid}-{time.time_ns():020d}.jsonl"
                self._journal = open_private(self._journal_path, os.O_WRONLY | os.O_APPEND)
                self._journal_pid = pid
            os.write(self._journal, b"".join(orjson.dumps(e.as_json()) + b"\n" for e in exposures))
        except OSError as exc:
            logger.warning("Could not journal %d exposure(s): %s", len(exposures), exc)

    def _take(self) -> list[ServedExposure]:
        """The queued batch, its journal segment closed and renamed for it (lock held)."""
        batch, self._pending = self._pending, []
        self._segment = None
        if self._journal is not None and self._journal_pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._journal)
            self._journal = None
            if self._journal_path is not None and batch:
                segment = self._journal_path.with_name("batch-" + self._journal_path.name.removeprefix("journal-"))
                with contextlib.suppress(OSError):
                    self._journal_path.rename(segment)
                    self._segment = segment
            elif self._journal_path is not None:
                self._journal_path.unlink(missing_ok=True)
            self._journal_path = None
        return batch

    # --- flushing ----------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._pending)

    def spooled(self) -> int:
        directory = self.directory()
        return len(list(directory.glob("spool-*.jsonl"))) if directory.is_dir() else 0

    def flush(self) -> bool:
        """Write what is queued, then replay spool files. True when everything was written."""
        with self._flush_lock:
            with self._lock:
                batch = self._take()
                segment, self._segment = self._segment, None
            if batch:
                if not self._record(batch):
                    self._keep(batch, segment)
                    return False
                if segment is not None:
                    segment.unlink(missing_ok=True)
            return self._replay()

    def _record(self, batch: Sequence[ServedExposure]) -> bool:
        """Write `batch`; False (nothing to drop) when the database cannot be reached. Records
        the database refuses are set aside one by one and the rest are written."""
        try:
            self.recorder(batch)
        except UNAVAILABLE as exc:
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
            logger.warning("%d exposure(s) kept for later: %s", len(batch), first_line)
            discard_connection()
            return False
        except Exception as exc:
            discard_connection()
            if len(batch) == 1:
                self._reject(batch[0], exc)
                return True
            middle = len(batch) // 2
            # Each half is written or kept as a whole; a half written twice is harmless.
            return self._record(batch[:middle]) and self._record(batch[middle:])
        self.recorded += len(batch)
        EXPOSURES.labels("written").inc(len(batch))
        return True

    def _reject(self, exposure: ServedExposure, error: Exception) -> None:
        self.rejected += 1
        EXPOSURES.labels("rejected").inc()
        logger.error("An exposure was refused by the database and set aside (%s: %s): %s",
                     type(error).__name__, str(error).splitlines()[0] if str(error) else "", exposure.as_json())
        try:
            path = private_directory(self.directory()) / f"rejected-{time.time_ns():020d}-{os.getpid()}.jsonl"
            fd = open_private(path, os.O_WRONLY | os.O_APPEND)
            try:
                line = {"exposure": exposure.as_json(), "error": f"{type(error).__name__}: {error}"[:2000]}
                os.write(fd, orjson.dumps(line, default=str) + b"\n")
            finally:
                os.close(fd)
        except OSError:
            logger.exception("Could not set the refused exposure aside.")

    def _replay(self) -> bool:
        directory = self.directory()
        if not directory.is_dir():
            return True
        self._adopt_orphans(directory)
        for path in sorted(directory.glob("spool-*.jsonl")):
            claimed = path.with_name(f"claimed-{os.getpid()}-{path.name}")
            try:
                path.rename(claimed)
            except OSError:
                continue  # another process took it
            try:
                batch = served_exposures_load(_spool_records(claimed))
            except DatabaseError as exc:  # the lookup of old lines' environments
                logger.warning("Exposure spool file %s kept for later: %s", path.name, type(exc).__name__)
                discard_connection()
                claimed.rename(path)
                return False
            if batch and not self._record(batch):
                claimed.rename(path)
                return False
            claimed.unlink(missing_ok=True)
        return True

    def _adopt_orphans(self, directory: Path) -> None:
        """Spool what processes that are gone left behind: claimed spool files, journals and
        batch segments (of a process killed before it could spool or delete them)."""
        now = time.time()
        for path in directory.glob("claimed-*.jsonl"):
            _, pid_text, original = path.name.split("-", 2)
            with contextlib.suppress(OSError, ValueError):
                alive = _process_alive(int(pid_text)) and now - path.stat().st_mtime < STALE_CLAIM_SECONDS
                if not alive:
                    path.rename(path.with_name(original))
        for pattern in ("journal-*.jsonl", "batch-*.jsonl", "spool-*.tmp"):
            for path in directory.glob(pattern):
                pid_text = path.name.split("-")[1] if not path.name.startswith("spool-") else path.stem.split("-")[-1]
                with contextlib.suppress(OSError, ValueError):
                    if int(pid_text) == os.getpid() or _process_alive(int(pid_text)):
                        continue
                    path.rename(directory / f"spool-{time.time_ns():020d}-adopted-{path.stem}.jsonl")

    def _keep(self, batch: Sequence[ServedExposure], segment: Path | None = None) -> None:
        """A batch that could not be written goes to a spool file: its journal segment when it
        has one, otherwise a new file; in memory only when the disk fails too."""
        try:
            if segment is not None and segment.exists():
                segment.rename(segment.with_name(f"spool-{time.time_ns():020d}-{os.getpid()}.jsonl"))
            else:
                self._spool(batch)
            EXPOSURES.labels("spooled").inc(len(batch))
        except OSError:
            logger.exception("Could not spool %d exposure(s); keeping them in memory.", len(batch))
            with self._lock:
                self._pending[:0] = batch

    def _spool(self, batch: Sequence[ServedExposure]) -> None:
        directory = private_directory(self.directory())
        path = directory / f"spool-{time.time_ns():020d}-{os.getpid()}.jsonl"
        tmp = path.with_suffix(".tmp")
        fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"".join(orjson.dumps(e.as_json()) + b"\n" for e in batch))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        logger.warning("Spooled %d exposure(s) to %s.", len(batch), path)

    def spill(self) -> None:
        """Move what is queued in memory to disk (at exit, or when gunicorn aborts a worker)."""
        with self._lock:
            batch = self._take()
            segment, self._segment = self._segment, None
        if batch:
            self._keep(batch, segment)

    def reset(self) -> None:
        with self._lock:
            self._pending = []
            self._seen, self._seen_before = set(), set()
            if self._journal is not None:
                with contextlib.suppress(OSError):
                    os.close(self._journal)
            self._journal, self._journal_path, self._segment = None, None, None
        self.recorded = 0
        self.rejected = 0

    @staticmethod
    def directory() -> Path:
        return Path(settings.SNAPSHOT_DIR) / "exposures"


def _spool_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a spool file. A line that cannot be read (the last line of a file
    whose writer was killed mid-write) is logged and skipped."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        logger.error("Unreadable exposure spool file %s: %s", path, exc)
        return []
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            logger.error("Skipping unreadable line %d of exposure spool file %s: %s", number, path, exc)
            continue
        if isinstance(record, dict) and ("environment_id" in record or "environment" in record):
            records.append(record)
        else:
            logger.error("Skipping line %d of exposure spool file %s: not an exposure", number, path)
    return records


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
