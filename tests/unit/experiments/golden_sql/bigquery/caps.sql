WITH src_x AS (
  SELECT
    user_id AS x_0,
    exposed_at AS x_1,
    experiment_key AS x_2,
    arm AS x_3,
    country AS x_4,
    platform AS x_5
  FROM exposures
), src_e AS (
  SELECT
    user_id AS e_0,
    event_time AS e_1,
    event AS e_2,
    amount AS e_3
  FROM events
), x AS (
  SELECT
    CAST(x_0 AS STRING) AS unit_id,
    CAST(x_1 AS DATETIME) AS ts,
    CASE WHEN x_3 = 'control' THEN 0 WHEN x_3 = 'treatment' THEN 1 END AS variation,
    CAST(x_4 AS STRING) AS s0,
    CAST(x_5 AS STRING) AS s1
  FROM src_x
  WHERE
    x_2 = 'checkout-test'
    AND x_3 IN ('control', 'treatment')
    AND x_1 >= CAST('2026-10-31 12:00:00.000000' AS DATETIME)
), ranked AS (
  SELECT
    unit_id,
    ts,
    variation,
    s0,
    s1,
    ROW_NUMBER() OVER (PARTITION BY unit_id ORDER BY ts NULLS LAST, variation NULLS LAST) AS rn,
    MIN(variation) OVER (PARTITION BY unit_id) AS vmin,
    MAX(variation) OVER (PARTITION BY unit_id) AS vmax
  FROM x
), a AS (
  SELECT
    unit_id,
    variation,
    ts AS first_seen,
    s0,
    s1
  FROM ranked
  WHERE
    rn = 1 AND vmin = vmax
), e AS (
  SELECT
    CAST(e_0 AS STRING) AS unit_id,
    CAST(e_1 AS DATETIME) AS ts,
    e_2 AS name,
    CAST(e_3 AS FLOAT64) AS value
  FROM src_e
  WHERE
    e_2 IN (
      'add_to_cart',
      'checkout',
      'click',
      'impression',
      'page_view',
      'purchase',
      'view_item'
    )
    AND e_1 >= CAST('2026-10-31 12:00:00.000000' AS DATETIME) - INTERVAL '336' HOUR
), f4_0 AS (
  SELECT
    a.unit_id AS unit_id,
    MIN(e.ts) AS t
  FROM a AS a
  JOIN e AS e
    ON e.unit_id = a.unit_id
  WHERE
    e.name = 'view_item'
    AND (
      e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '72' HOUR
    )
  GROUP BY
    a.unit_id
), f4_1 AS (
  SELECT
    a.unit_id AS unit_id,
    MIN(e.ts) AS t
  FROM a AS a
  JOIN e AS e
    ON e.unit_id = a.unit_id
  JOIN f4_0 AS p
    ON p.unit_id = a.unit_id
  WHERE
    e.name = 'add_to_cart'
    AND (
      e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '72' HOUR
    )
    AND e.ts >= p.t
  GROUP BY
    a.unit_id
), u AS (
  SELECT
    a.unit_id AS unit_id,
    a.variation AS variation,
    a.first_seen AS first_seen,
    a.s0 AS s0,
    a.s1 AS s1,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'purchase'
          AND (
            e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '72' HOUR
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS FLOAT64) AS y0,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'purchase'
          AND (
            e.ts >= a.first_seen - INTERVAL '336' HOUR AND e.ts < a.first_seen
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS FLOAT64) AS y1,
    CAST(COALESCE(
      SUM(CASE WHEN e.name = 'purchase' AND e.ts >= a.first_seen THEN e.value END),
      CAST(0 AS FLOAT64)
    ) AS FLOAT64) AS y2,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'purchase'
          AND (
            e.ts >= a.first_seen - INTERVAL '336' HOUR AND e.ts < a.first_seen
          )
          THEN e.value
        END
      ),
      CAST(0 AS FLOAT64)
    ) AS FLOAT64) AS y3,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'click'
          AND (
            e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '336' HOUR
          )
          THEN e.value
        END
      ),
      CAST(0 AS FLOAT64)
    ) AS FLOAT64) AS y4,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'click'
          AND (
            e.ts >= a.first_seen - INTERVAL '336' HOUR AND e.ts < a.first_seen
          )
          THEN e.value
        END
      ),
      CAST(0 AS FLOAT64)
    ) AS FLOAT64) AS y5,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'impression'
          AND (
            e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '336' HOUR
          )
          THEN e.value
        END
      ),
      CAST(0 AS FLOAT64)
    ) AS FLOAT64) AS y6,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'impression'
          AND (
            e.ts >= a.first_seen - INTERVAL '336' HOUR AND e.ts < a.first_seen
          )
          THEN e.value
        END
      ),
      CAST(0 AS FLOAT64)
    ) AS FLOAT64) AS y7,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'page_view'
          AND (
            e.ts >= a.first_seen + INTERVAL '168' HOUR
            AND e.ts < a.first_seen + INTERVAL '192' HOUR
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS FLOAT64) AS y8,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'page_view'
          AND (
            e.ts >= a.first_seen - INTERVAL '336' HOUR AND e.ts < a.first_seen
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS FLOAT64) AS y9,
    CAST(CASE
      WHEN MAX(
        CASE
          WHEN e.name = 'checkout'
          AND (
            e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '72' HOUR
          )
          THEN e.ts
        END
      ) >= MAX(r4.t)
      THEN 1
      ELSE 0
    END AS FLOAT64) AS y10,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'checkout'
          AND (
            e.ts >= a.first_seen - INTERVAL '336' HOUR AND e.ts < a.first_seen
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS FLOAT64) AS y11,
    CAST(COUNT(
      CASE
        WHEN e.name = 'click'
        AND (
          e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '336' HOUR
        )
        THEN 1
      END
    ) AS FLOAT64) AS y12,
    CAST(COUNT(
      CASE
        WHEN e.name = 'click'
        AND (
          e.ts >= a.first_seen - INTERVAL '336' HOUR AND e.ts < a.first_seen
        )
        THEN 1
      END
    ) AS FLOAT64) AS y13,
    CAST(COUNT(
      CASE
        WHEN e.name = 'purchase'
        AND (
          e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '336' HOUR
        )
        THEN 1
      END
    ) AS FLOAT64) AS y14,
    CAST(COUNT(
      CASE
        WHEN e.name = 'purchase'
        AND (
          e.ts >= a.first_seen - INTERVAL '336' HOUR AND e.ts < a.first_seen
        )
        THEN 1
      END
    ) AS FLOAT64) AS y15
  FROM a AS a
  LEFT JOIN e AS e
    ON e.unit_id = a.unit_id
  LEFT JOIN f4_1 AS r4
    ON r4.unit_id = a.unit_id
  GROUP BY
    a.unit_id,
    a.variation,
    a.first_seen,
    a.s0,
    a.s1
)
SELECT
  MAX(c0) AS c0,
  MAX(c1) AS c1
FROM (
  SELECT
    PERCENTILE_CONT(CASE WHEN y2 <> 0 THEN y2 END, 0.95) OVER () AS c0,
    PERCENTILE_CONT(CASE WHEN y14 <> 0 THEN y14 END, 0.9) OVER () AS c1
  FROM u
) AS q
