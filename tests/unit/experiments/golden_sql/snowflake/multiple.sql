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
    CAST(x_0 AS VARCHAR) AS unit_id,
    CAST(CONVERT_TIMEZONE('UTC', x_1) AS TIMESTAMPNTZ) AS ts,
    CASE WHEN x_3 = 'control' THEN 0 WHEN x_3 = 'treatment' THEN 1 END AS variation,
    CAST(x_4 AS VARCHAR) AS s0,
    CAST(x_5 AS VARCHAR) AS s1
  FROM src_x
  WHERE
    x_2 = 'checkout-test'
    AND x_3 IN ('control', 'treatment')
    AND x_1 >= CAST('2026-10-31 12:00:00.000000' AS TIMESTAMPNTZ)
), ranked AS (
  SELECT
    unit_id,
    ts,
    variation,
    s0,
    s1,
    ROW_NUMBER() OVER (PARTITION BY unit_id ORDER BY ts, variation) AS rn,
    MIN(variation) OVER (PARTITION BY unit_id) AS vmin,
    MAX(variation) OVER (PARTITION BY unit_id) AS vmax
  FROM x
)
SELECT
  COUNT(*) AS n
FROM ranked
WHERE
  rn = 1 AND vmin <> vmax
