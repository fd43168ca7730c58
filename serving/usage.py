"""When each flag was last evaluated, per environment, without a database write per request.

The evaluation endpoints note ``(flag key, environment id) -> time`` in a dictionary of this
process (a lock and a dictionary update per request). A background thread writes what was
noted every ``EVALUATION_FLUSH_INTERVAL`` seconds (60 by default) with one statement that
only ever moves a stored time forward, so processes flushing in any order agree. When the
database is down the noted times stay in memory (one entry per flag and environment, so
memory is bounded) and go out with the next flush that succeeds; serving never waits.

Also noted: exposures of experiments received by the events API (they count as evaluations
of the experiment's flag) and when an environment's GrowthBook payload was last fetched (SDKs
evaluate the payload locally, so a fetch says nothing about which flags are used).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection

from serving.background import FlushThread, discard_connection

__all__ = ["UsageRecorder", "recorder"]

logger = logging.getLogger(__name__)

# Flags noted by key (the snapshot knows keys, not row ids) and experiments by id; both are
# turned into flag ids inside the statement. ORDER BY keeps the row locks of concurrent
# flushes from different processes in one order (no deadlock). The WHERE clauses make the
# update forward-only.
_FLUSH_SQL = """
WITH seen(flag_id, environment_id, at) AS (
    SELECT f.id, s.env, s.at
    FROM unnest(%(flag_keys)s::text[], %(flag_envs)s::bigint[], %(flag_ats)s::timestamptz[]) AS s(key, env, at)
    JOIN flags_flag f ON f.key = s.key
    UNION ALL
    SELECT x.flag_id, s.env, s.at
    FROM unnest(%(exp_ids)s::bigint[], %(exp_envs)s::bigint[], %(exp_ats)s::timestamptz[]) AS s(id, env, at)
    JOIN experiments_experiment x ON x.id = s.id
), evaluated AS (
    INSERT INTO flags_flagusage AS u (flag_id, environment_id, last_evaluated_at)
    SELECT seen.flag_id, seen.environment_id, max(seen.at)
    FROM seen JOIN flags_environment e ON e.id = seen.environment_id
    GROUP BY seen.flag_id, seen.environment_id
    ORDER BY seen.flag_id, seen.environment_id
    ON CONFLICT (flag_id, environment_id) DO UPDATE SET last_evaluated_at = EXCLUDED.last_evaluated_at
    WHERE u.last_evaluated_at < EXCLUDED.last_evaluated_at
    RETURNING 1
), fetched AS (
    INSERT INTO flags_environmentusage AS p (environment_id, payload_fetched_at)
    SELECT s.env, s.at
    FROM unnest(%(fetch_envs)s::bigint[], %(fetch_ats)s::timestamptz[]) AS s(env, at)
    JOIN flags_environment e ON e.id = s.env
    ORDER BY s.env
    ON CONFLICT (environment_id) DO UPDATE SET payload_fetched_at = EXCLUDED.payload_fetched_at
    WHERE p.payload_fetched_at < EXCLUDED.payload_fetched_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM evaluated), (SELECT count(*) FROM fetched)
"""



def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class UsageRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        # environment id -> {flag key: epoch seconds}
        self._flags: dict[int, dict[str, float]] = {}
        # (environment id, experiment id) -> epoch seconds
        self._experiments: dict[tuple[int, int], float] = {}
        # environment id -> epoch seconds
        self._payloads: dict[int, float] = {}
        self._flusher = FlushThread(
            "usage-flush", lambda: float(settings.EVALUATION_FLUSH_INTERVAL), self.flush, close_after=True
        )
        self.flushed = 0

    # --- request side: memory only ------------------------------------------------------

    def evaluated(self, environment_id: int, keys: Iterable[str], at: float | None = None) -> None:
        """Note that flags ``keys`` were evaluated in the environment (now, by default)."""
        moment = time.time() if at is None else at
        with self._lock:
            noted = self._flags.get(environment_id)
            if noted is None:
                noted = self._flags[environment_id] = {}
            noted.update(dict.fromkeys(keys, moment))
        self._flusher.ensure_started()

    def payload_fetched(self, environment_id: int, at: float | None = None) -> None:
        moment = time.time() if at is None else at
        with self._lock:
            self._payloads[environment_id] = moment
        self._flusher.ensure_started()

    def exposures_received(
        self, environment_id: int, experiment_ids: Sequence[int], timestamps: Sequence[datetime]
    ) -> None:
        """Exposures accepted by the events API: the latest of each experiment, no later than now."""
        if not experiment_ids:
            return
        latest: dict[int, float] = {}
        for experiment_id, ts in zip(experiment_ids, timestamps, strict=True):
            epoch = ts.timestamp()
            if epoch > latest.get(experiment_id, 0.0):
                latest[experiment_id] = epoch
        now = time.time()
        with self._lock:
            for experiment_id, epoch in latest.items():
                key = (environment_id, experiment_id)
                self._experiments[key] = max(self._experiments.get(key, 0.0), min(epoch, now))
        self._flusher.ensure_started()

    # --- flushing -------------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._flags.values()) + len(self._experiments) + len(self._payloads)

    def flush(self) -> bool:
        """Write what was noted in one statement; on failure keep it for the next flush.
        True when nothing is left to write."""
        with self._flush_lock:
            with self._lock:
                flags, experiments, payloads = self._flags, self._experiments, self._payloads
                self._flags, self._experiments, self._payloads = {}, {}, {}
            if not flags and not experiments and not payloads:
                return True
            try:
                self._write(flags, experiments, payloads)
            except DatabaseError as exc:
                first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
                logger.warning("Evaluation times kept for the next flush: %s", first_line)
                discard_connection()
                self._restore(flags, experiments, payloads)
                return False
            return True

    def _write(
        self, flags: dict[int, dict[str, float]], experiments: dict[tuple[int, int], float], payloads: dict[int, float]
    ) -> None:
        params: dict[str, list[object]] = {
            "flag_keys": [], "flag_envs": [], "flag_ats": [],
            "exp_ids": [], "exp_envs": [], "exp_ats": [],
            "fetch_envs": [], "fetch_ats": [],
        }
        for env_id, noted in flags.items():
            for key, at in noted.items():
                params["flag_keys"].append(key)
                params["flag_envs"].append(env_id)
                params["flag_ats"].append(_moment(at))
        for (env_id, experiment_id), at in experiments.items():
            params["exp_ids"].append(experiment_id)
            params["exp_envs"].append(env_id)
            params["exp_ats"].append(_moment(at))
        for env_id, at in payloads.items():
            params["fetch_envs"].append(env_id)
            params["fetch_ats"].append(_moment(at))
        with connection.cursor() as cursor:
            cursor.execute(_FLUSH_SQL, params)
            row = cursor.fetchone()
        self.flushed += int(row[0]) + int(row[1]) if row else 0

    def _restore(
        self, flags: dict[int, dict[str, float]], experiments: dict[tuple[int, int], float], payloads: dict[int, float]
    ) -> None:
        with self._lock:
            for env_id, noted in flags.items():
                current = self._flags.setdefault(env_id, {})
                for key, at in noted.items():
                    if at > current.get(key, 0.0):
                        current[key] = at
            for exp_key, at in experiments.items():
                self._experiments[exp_key] = max(at, self._experiments.get(exp_key, 0.0))
            for env_id, at in payloads.items():
                self._payloads[env_id] = max(at, self._payloads.get(env_id, 0.0))

    def reset(self) -> None:
        with self._lock:
            self._flags, self._experiments, self._payloads = {}, {}, {}
        self.flushed = 0


recorder = UsageRecorder()
