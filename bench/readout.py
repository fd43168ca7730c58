"""Readout time of one experiment against a bare scan of the events table, in the same run.

The data is generated in SQL (generate_series) in a database of its own: N exposed units
(three slice attributes, 1% seen in both variations) and M events around their exposures
(before them for the CUPED covariate, inside and after the windows), for five metrics:
conversion, revenue with CUPED and a percentile cap, a click-through ratio, 7-day retention
and a 3-step funnel. Then, each timed several times (median):

- baseline: a warm `SELECT count(*), sum(value)` over the events table;
- cold readout: `readout_run(force_full=True)`, which rebuilds the per-unit rollup from all
  events, aggregates, runs the statistics and stores the snapshot;
- refresh after new traffic: K new events arrive (10,000 by default: more than 15 minutes
  of this experiment's traffic, which is about 10M events over 30 days), dated as traffic
  received between two readouts, then `readout_run()`, which updates the rollup
  incrementally;
- refresh without new traffic.

Each readout row also gives the time of its statistics step: the calls the readout makes to the
statistics engine (`stats.analyze_many`, `stats.srm_test`, `stats.adjust_p_values`), timed by
wrapping those functions in this process only, and their share of the readout (goal: under 5%).

Peak memory is the benchmark process's maximum RSS (the readout runs in-process, as in a
worker). Usage:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/splitbase python bench/readout.py \\
        [--units 1000000] [--events 10000000] [--new-events 10000] [--repeat 3] [--reuse]

The benchmark works in the database named by --database (default: DATABASE_URL's name +
`_readout_bench`) on the same server, creating it when missing; --reuse keeps data generated earlier.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import benchdb

EXPERIMENT = "bench-readout"
RUN = f"{os.getpid()}-{int(time.time())}"
STATISTICS_GOAL = 0.05  # largest share of a readout's time the statistics step may take


class StatisticsClock:
    """Wall time spent in the statistics engine, summed over the calls a readout makes to it.

    The readout reaches the engine through these functions of the `stats` package; each is
    replaced here, in the benchmark process only, by a wrapper that adds up its duration (a
    call made from inside another wrapped call is counted once, in the outer one).
    """

    ENTRY_POINTS = ("analyze_many", "srm_test", "adjust_p_values")

    def __init__(self) -> None:
        import stats

        self.seconds = 0.0
        self.calls = 0
        self._depth = 0
        for name in self.ENTRY_POINTS:
            setattr(stats, name, self._wrap(getattr(stats, name)))

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - start
                    self.calls += 1

        return timed

    def lap(self) -> tuple[float, int]:
        """Seconds and calls since the previous lap."""
        lap = (self.seconds, self.calls)
        self.seconds, self.calls = 0.0, 0
        return lap


class Step(NamedTuple):
    label: str
    seconds: float  # median over the runs
    statistics: float | None = None  # median seconds of the statistics step, None when not a readout
    share: float | None = None  # median over the runs of statistics / readout
    calls: int = 0  # calls to the engine in the last run


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _readout_step(label: str, times: list[float], laps: list[tuple[float, int]]) -> Step:
    spent = [seconds for seconds, _ in laps]
    shares = [seconds / total for seconds, total in zip(spent, times, strict=True)]
    return Step(label, statistics.median(times), statistics.median(spent), statistics.median(shares), laps[-1][1])


def _setup_experiment() -> Any:
    from experiments import services
    from experiments.models import Experiment, Metric

    actor, env, flag = benchdb.bench_flag("bench-checkout")
    definitions = {
        "bench-purchase": {"kind": "conversion", "event_name": "purchase", "window_hours": 72},
        "bench-revenue": {"kind": "mean", "event_name": "purchase", "window_hours": 336,
                          "capping": "percentile", "capping_value": 0.99},
        "bench-ctr": {"kind": "ratio", "event_name": "click", "denominator_event": "impression",
                      "window_hours": 336},
        "bench-d7": {"kind": "retention", "event_name": "page_view", "retention_day": 7},
        "bench-funnel": {"kind": "funnel", "funnel_steps": ["view_item", "add_to_cart", "checkout"],
                         "window_hours": 72},
    }
    for key, data in definitions.items():
        if not Metric.objects.filter(key=key).exists():
            services.metric_create(actor=actor, key=key, **data)
    experiment = Experiment.objects.filter(key=EXPERIMENT).first()
    if experiment is None:
        experiment = services.experiment_create(
            actor=actor, key=EXPERIMENT, flag=flag, environment=env,
            variations=[{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
            metrics=[{"metric": k, "role": "primary" if k == "bench-purchase" else "secondary"}
                     for k in definitions],
            slice_attributes=["country", "platform", "plan"], cuped=True, cuped_lookback_days=14,
        )
        experiment = services.experiment_start(actor=actor, experiment=experiment)
    return experiment


# Exposure times spread over 14 days before T0, derived from the unit id so that events can
# be placed around a unit's exposure without a join. T0 is a fixed point in the recent past.
FIRST_SEEN = "(({t0})::timestamptz - interval '14 days' + ((({u}) * 7919) %% 1209600) * interval '1 second')"


def _generate(experiment: Any, units: int, events: int) -> None:
    from django.db import connection

    from experiments.models import Phase

    phase = Phase.objects.get(experiment=experiment, number=1)
    env_id = experiment.environment_id
    t0 = "date_trunc('hour', now()) - interval '1 hour'"
    Phase.objects.filter(pk=phase.pk).update(started_at=datetime(2000, 1, 1, tzinfo=UTC))
    fs = FIRST_SEEN.format(t0=t0, u="g")
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("DELETE FROM experiments_unitrollup")
        cur.execute("DELETE FROM experiments_readoutstate")
        cur.execute("DELETE FROM experiments_resultsnapshot")
        cur.execute("TRUNCATE experiments_event, experiments_assignment, experiments_exposure, experiments_unit")
        print(f"generating {units:,} units ...", flush=True)
        cur.execute(
            "INSERT INTO experiments_unit (id, environment_id, key) "
            "SELECT g, %s, 'unit-' || g FROM generate_series(1::bigint, %s::bigint) g", (env_id, units),
        )
        cur.execute("SELECT setval(pg_get_serial_sequence('experiments_unit', 'id'), %s)", (units,))
        cur.execute(
            f"""
            INSERT INTO experiments_assignment
                (phase_id, unit_id, experiment_id, variation, first_seen, attributes, multiple, updated_at)
            SELECT %(phase)s, g, %(experiment)s, (hashint8(g) & 1)::int2, {fs},
                   jsonb_build_object(
                       'country', (ARRAY['US','DE','FR','GB','BR','IN','JP','CA'])[1 + (hashint8(g * 3) & 7)],
                       'platform', (ARRAY['ios','android','web'])[1 + abs(hashint8(g * 5)) %% 3],
                       'plan', (ARRAY['free','pro','team'])[1 + abs(hashint8(g * 7)) %% 3]),
                   g %% 100 = 0, now() - interval '1 day'
            FROM generate_series(1::bigint, %(units)s::bigint) g
            """,
            {"phase": phase.pk, "experiment": experiment.pk, "units": units},
        )
        # Drop the event indexes for the load and build them afterwards (much faster).
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'experiments_event' "
            "AND indexname NOT LIKE '%%pkey'"
        )
        indexes = cur.fetchall()
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'experiments_event'::regclass AND contype = 'p'"
        )
        pkey = cur.fetchone()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        if pkey:
            cur.execute(f'ALTER TABLE experiments_event DROP CONSTRAINT "{pkey[0]}"')
        print(f"generating {events:,} events ...", flush=True)
        start = time.perf_counter()
        # Names: impressions 30 %, page views 25 %, clicks 10 %, funnel steps 20 %, purchases
        # 10 %, other 5 %. Times: from 14 days before the unit's exposure to 16 days after,
        # capped at T0; the treatment converts a little more often.
        fs_u = FIRST_SEEN.format(t0=t0, u="s.u")
        cur.execute(
            f"""
            INSERT INTO experiments_event (environment_id, client_id, unit_id, name, value, ts, received_at)
            SELECT %(env)s, 'ev-' || s.g, s.u,
                   s.name,
                   CASE WHEN s.name = 'purchase' THEN round((random() * 80 + 5)::numeric, 2)::float8 ELSE 1 END,
                   least({t0}, {fs_u} + (s.r2 * 30 - 14) * interval '1 day'),
                   now() - interval '1 day'
            FROM (
                SELECT g, 1 + ((hashint8(g) & 2147483647) %% %(units)s)::bigint AS u, random() AS r2,
                       CASE WHEN r < 0.30 THEN 'impression' WHEN r < 0.55 THEN 'page_view'
                            WHEN r < 0.65 THEN 'click' WHEN r < 0.73 THEN 'view_item'
                            WHEN r < 0.79 THEN 'add_to_cart' WHEN r < 0.85 THEN 'checkout'
                            WHEN r < 0.95 THEN 'purchase' ELSE 'other' END AS name
                FROM (SELECT g, random() AS r FROM generate_series(1::bigint, %(events)s::bigint) g) x
            ) s
            """,
            {"env": env_id, "units": units, "events": events},
        )
        print(f"  loaded in {time.perf_counter() - start:.0f} s; building indexes ...", flush=True)
        if pkey:
            cur.execute(f'ALTER TABLE experiments_event ADD CONSTRAINT "{pkey[0]}" {pkey[1]}')
        for _, definition in indexes:
            cur.execute(definition)
    with connection.cursor() as cur:
        connection.set_autocommit(True)
        cur.execute("VACUUM ANALYZE experiments_event")
        cur.execute("VACUUM ANALYZE experiments_assignment")
        cur.execute("VACUUM ANALYZE experiments_unit")
    print(f"  data ready in {time.perf_counter() - start:.0f} s", flush=True)


def _add_events(experiment: Any, units: int, count: int, batch: int) -> None:
    """New traffic: `count` events for random exposed units, received since the previous readout.

    They are received now, after the previous readout began.
    """
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO experiments_event (environment_id, client_id, unit_id, name, value, ts, received_at)
            SELECT %(env)s, 'new-' || %(run)s || '-' || %(batch)s || '-' || g,
                   1 + (hashint8(g + %(batch)s * 1000003) & 2147483647) %% %(units)s,
                   (ARRAY['impression','page_view','click','purchase','view_item'])[1 + g %% 5],
                   1, now() - interval '3 minutes', now()
            FROM generate_series(1::bigint, %(count)s::bigint) g
            """,
            {"env": experiment.environment_id, "units": units, "count": count, "batch": batch, "run": RUN},
        )


def _quarter_hour_passes(experiment: Any) -> None:
    """Fifteen minutes pass between two readouts: what came before was received long before.

    Runs follow each other within seconds; the readout looks again at rows received up to the
    watermark overlap (two minutes) before the previous readout began, which would make each
    run recompute the previous runs' units too. Moving the previous readout's start forward by
    the overlap makes the next one look exactly at what is received from now on, as it would
    15 minutes later (moving the events back instead would rewrite them, and churn the table).
    """
    from django.db import connection

    from experiments.readout_sql import WATERMARK_OVERLAP

    with connection.cursor() as cur:
        cur.execute(
            "UPDATE experiments_readoutstate SET watermark = now() + %s "
            "WHERE phase_id = (SELECT max(id) FROM experiments_phase WHERE experiment_id = %s)",
            (WATERMARK_OVERLAP, experiment.pk),
        )


def _baseline() -> tuple[int, float]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*), sum(value) FROM experiments_event")
        row = cur.fetchone()
    assert row is not None
    return int(row[0]), float(row[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--new-events", type=int, default=10_000,
                        help="events arriving between two refreshes (default: ~15 minutes of this traffic)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", default=None, help="default: <DATABASE_URL name>_readout_bench")
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run with the same sizes")
    args = parser.parse_args()

    clock = StatisticsClock()  # before the readout's modules are imported, whatever way they import `stats`
    benchdb.configure("readout_bench", args.database, debug=True)
    from experiments.models import Assignment, Event
    from experiments.readout_jobs import readout_run

    experiment = _setup_experiment()
    have = (Assignment.objects.filter(experiment=experiment).count(), Event.objects.count())
    if not args.reuse or have[0] != args.units or have[1] < args.events:
        _generate(experiment, args.units, args.events)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    rows: list[Step] = []
    _baseline()  # warm the cache
    scan, (count, _) = _timed(_baseline, args.repeat)
    rows.append(Step(f"baseline: count(*), sum(value) over {count:,} events", scan))

    def timed_readouts(
        run: Callable[[], Any], repeat: int, prepare: Callable[[], Any] | None = None
    ) -> tuple[list[float], list[tuple[float, int]], Any]:
        """Wall time and statistics lap of each run; `prepare` runs before the timer starts."""
        times, laps, result = [], [], None
        for _ in range(repeat):
            if prepare is not None:
                prepare()
            clock.lap()
            start = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - start)
            laps.append(clock.lap())
        return times, laps, result

    def cold() -> Any:
        snapshot = readout_run(experiment_id=experiment.pk, force_full=True)
        assert snapshot is not None and snapshot.status == "success", snapshot and snapshot.error
        return snapshot

    times, laps, snapshot = timed_readouts(cold, max(1, args.repeat - 1))
    rows.append(_readout_step("readout, rollup rebuilt from all events (cold)", times, laps))

    batches = iter(range(1, 1000))

    recomputed: list[int] = []

    def new_traffic() -> None:
        _quarter_hour_passes(experiment)
        _add_events(experiment, args.units, args.new_events, next(batches))

    def refresh() -> Any:
        result = readout_run(experiment_id=experiment.pk)
        assert result is not None and result.status == "success" and result.rollup_mode == "incremental"
        recomputed.append(int(result.inputs["rollup"]["units_recomputed"]))
        return result

    times, laps, _ = timed_readouts(refresh, args.repeat, prepare=new_traffic)
    done = f"{min(recomputed):,}–{max(recomputed):,}" if len(set(recomputed)) > 1 else f"{recomputed[0]:,}"
    rows.append(_readout_step(f"readout after {args.new_events:,} new events ({done} units recomputed)", times, laps))

    def quiet() -> Any:
        result = readout_run(experiment_id=experiment.pk)
        assert result is not None and result.status == "success"
        return result

    def quiet_after_a_while() -> Any:
        _quarter_hour_passes(experiment)
        return quiet()

    times, laps, _ = timed_readouts(quiet_after_a_while, args.repeat)
    rows.append(_readout_step("readout with no new events", times, laps))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    print()
    print(f"Readout benchmark, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, {benchdb.machine(postgres=True)}")
    print(f"{args.units:,} exposed units, {count:,} events, 5 metrics (conversion, revenue with CUPED, ratio, "
          "7-day retention, 3-step funnel), 3 slice attributes")
    print()
    print(f"| {'step':<62} | {'seconds':>8} | {'x scan':>7} | {'statistics s':>12} | {'share':>6} |")
    print(f"|{'-' * 64}|{'-' * 10}|{'-' * 9}|{'-' * 14}|{'-' * 8}|")
    for step in rows:
        spent = "" if step.statistics is None else f"{step.statistics:.4f}"
        share = "" if step.share is None else f"{step.share:.2%}"
        print(f"| {step.label:<62} | {step.seconds:>8.2f} | {step.seconds / scan:>7.2f} | {spent:>12} | {share:>6} |")
    print()
    entry_points = ", ".join(f"stats.{name}" for name in clock.ENTRY_POINTS)
    readouts = [step for step in rows if step.share is not None]
    if readouts[0].calls == 0:  # a cold readout always runs the statistics
        print(f"Statistics step: not measured (the readout made no call to {entry_points})")
    else:
        worst = max(step.share for step in readouts if step.share is not None)
        verdict = "met" if worst < STATISTICS_GOAL else "NOT met"
        print(f"Statistics step ({entry_points}; {readouts[0].calls} calls in a cold readout): at most "
              f"{worst:.2%} of a readout's time; goal under {STATISTICS_GOAL:.0%}: {verdict}")
    print(f"Peak RSS of the process running the readouts: {peak / 1024:.0f} MiB (before the readouts: "
          f"{rss_before / 1024:.0f} MiB)")
    print(f"Snapshot: {snapshot.units:,} units analysed, {snapshot.multiple_exposure_units:,} with multiple "
          f"exposures, SRM p = {snapshot.srm_p_value:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
