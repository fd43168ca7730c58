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
    CAST(e_0 AS VARCHAR) AS unit_id,
    CAST(CONVERT_TIMEZONE('UTC', e_1) AS TIMESTAMPNTZ) AS ts,
    e_2 AS name,
    CAST(e_3 AS DOUBLE) AS value
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
    AND e_1 >= CAST('2026-10-31 12:00:00.000000' AS TIMESTAMPNTZ) - INTERVAL '336 HOUR'
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
      e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '72 HOUR'
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
      e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '72 HOUR'
    )
    AND e.ts >= p.t
  GROUP BY
    a.unit_id
), v AS (
  SELECT
    a.unit_id AS unit_id,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'purchase'
          AND (
            e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '72 HOUR'
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS DOUBLE) AS y0,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'purchase'
          AND (
            e.ts >= a.first_seen - INTERVAL '336 HOUR' AND e.ts < a.first_seen
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS DOUBLE) AS y1,
    CAST(COALESCE(
      SUM(CASE WHEN e.name = 'purchase' AND e.ts >= a.first_seen THEN e.value END),
      CAST(0 AS DOUBLE)
    ) AS DOUBLE) AS y2,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'purchase'
          AND (
            e.ts >= a.first_seen - INTERVAL '336 HOUR' AND e.ts < a.first_seen
          )
          THEN e.value
        END
      ),
      CAST(0 AS DOUBLE)
    ) AS DOUBLE) AS y3,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'click'
          AND (
            e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '336 HOUR'
          )
          THEN e.value
        END
      ),
      CAST(0 AS DOUBLE)
    ) AS DOUBLE) AS y4,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'click'
          AND (
            e.ts >= a.first_seen - INTERVAL '336 HOUR' AND e.ts < a.first_seen
          )
          THEN e.value
        END
      ),
      CAST(0 AS DOUBLE)
    ) AS DOUBLE) AS y5,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'impression'
          AND (
            e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '336 HOUR'
          )
          THEN e.value
        END
      ),
      CAST(0 AS DOUBLE)
    ) AS DOUBLE) AS y6,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'impression'
          AND (
            e.ts >= a.first_seen - INTERVAL '336 HOUR' AND e.ts < a.first_seen
          )
          THEN e.value
        END
      ),
      CAST(0 AS DOUBLE)
    ) AS DOUBLE) AS y7,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'page_view'
          AND (
            e.ts >= a.first_seen + INTERVAL '168 HOUR'
            AND e.ts < a.first_seen + INTERVAL '192 HOUR'
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS DOUBLE) AS y8,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'page_view'
          AND (
            e.ts >= a.first_seen - INTERVAL '336 HOUR' AND e.ts < a.first_seen
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS DOUBLE) AS y9,
    CAST(CASE
      WHEN MAX(
        CASE
          WHEN e.name = 'checkout'
          AND (
            e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '72 HOUR'
          )
          THEN e.ts
        END
      ) >= MAX(r4.t)
      THEN 1
      ELSE 0
    END AS DOUBLE) AS y10,
    CAST(CASE
      WHEN COUNT(
        CASE
          WHEN e.name = 'checkout'
          AND (
            e.ts >= a.first_seen - INTERVAL '336 HOUR' AND e.ts < a.first_seen
          )
          THEN 1
        END
      ) > 0
      THEN 1
      ELSE 0
    END AS DOUBLE) AS y11,
    CAST(COUNT(
      CASE
        WHEN e.name = 'click'
        AND (
          e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '336 HOUR'
        )
        THEN 1
      END
    ) AS DOUBLE) AS y12,
    CAST(COUNT(
      CASE
        WHEN e.name = 'click'
        AND (
          e.ts >= a.first_seen - INTERVAL '336 HOUR' AND e.ts < a.first_seen
        )
        THEN 1
      END
    ) AS DOUBLE) AS y13,
    CAST(COUNT(
      CASE
        WHEN e.name = 'purchase'
        AND (
          e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '336 HOUR'
        )
        THEN 1
      END
    ) AS DOUBLE) AS y14,
    CAST(COUNT(
      CASE
        WHEN e.name = 'purchase'
        AND (
          e.ts >= a.first_seen - INTERVAL '336 HOUR' AND e.ts < a.first_seen
        )
        THEN 1
      END
    ) AS DOUBLE) AS y15,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'purchase'
          AND (
            e.ts >= a.first_seen AND e.ts < a.first_seen + INTERVAL '168 HOUR'
          )
          THEN e.value
        END
      ),
      CAST(0 AS DOUBLE)
    ) AS DOUBLE) AS y16,
    CAST(COALESCE(
      SUM(
        CASE
          WHEN e.name = 'purchase'
          AND (
            e.ts >= a.first_seen - INTERVAL '336 HOUR' AND e.ts < a.first_seen
          )
          THEN e.value
        END
      ),
      CAST(0 AS DOUBLE)
    ) AS DOUBLE) AS y17
  FROM a AS a
  JOIN e AS e
    ON e.unit_id = a.unit_id
  LEFT JOIN f4_1 AS r4
    ON r4.unit_id = a.unit_id
  WHERE
    e.ts >= a.first_seen - INTERVAL '336 HOUR'
  GROUP BY
    a.unit_id
), u AS (
  SELECT
    a.unit_id AS unit_id,
    a.variation AS variation,
    a.first_seen AS first_seen,
    a.s0 AS s0,
    a.s1 AS s1,
    COALESCE(v.y0, CAST(0 AS DOUBLE)) AS y0,
    COALESCE(v.y1, CAST(0 AS DOUBLE)) AS y1,
    COALESCE(v.y2, CAST(0 AS DOUBLE)) AS y2,
    COALESCE(v.y3, CAST(0 AS DOUBLE)) AS y3,
    COALESCE(v.y4, CAST(0 AS DOUBLE)) AS y4,
    COALESCE(v.y5, CAST(0 AS DOUBLE)) AS y5,
    COALESCE(v.y6, CAST(0 AS DOUBLE)) AS y6,
    COALESCE(v.y7, CAST(0 AS DOUBLE)) AS y7,
    COALESCE(v.y8, CAST(0 AS DOUBLE)) AS y8,
    COALESCE(v.y9, CAST(0 AS DOUBLE)) AS y9,
    COALESCE(v.y10, CAST(0 AS DOUBLE)) AS y10,
    COALESCE(v.y11, CAST(0 AS DOUBLE)) AS y11,
    COALESCE(v.y12, CAST(0 AS DOUBLE)) AS y12,
    COALESCE(v.y13, CAST(0 AS DOUBLE)) AS y13,
    COALESCE(v.y14, CAST(0 AS DOUBLE)) AS y14,
    COALESCE(v.y15, CAST(0 AS DOUBLE)) AS y15,
    COALESCE(v.y16, CAST(0 AS DOUBLE)) AS y16,
    COALESCE(v.y17, CAST(0 AS DOUBLE)) AS y17
  FROM a AS a
  LEFT JOIN v AS v
    ON v.unit_id = a.unit_id
), c AS (
  SELECT
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY
      CASE WHEN y2 <> 0 THEN y2 END) AS c0,
    PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY
      CASE WHEN y14 <> 0 THEN y14 END) AS c1,
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY
      CASE
        WHEN y16 <> 0 AND first_seen <= CAST('2026-11-13 12:00:00.000000' AS TIMESTAMPNTZ)
        THEN y16
      END) AS c2
  FROM u
)
SELECT
  variation,
  s0,
  s1,
  COUNT(*) AS n,
  COUNT(*) AS t4,
  SUM(y0) AS t5,
  SUM(y0) AS t6,
  SUM(y1) AS t7,
  SUM(y1) AS t8,
  SUM(y1 * y0) AS t9,
  COUNT(*) AS t10,
  SUM(LEAST(y2, COALESCE(c0, y2))) AS t11,
  SUM(LEAST(y2, COALESCE(c0, y2)) * LEAST(y2, COALESCE(c0, y2))) AS t12,
  SUM(LEAST(y3, COALESCE(c0, y3))) AS t13,
  SUM(LEAST(y3, COALESCE(c0, y3)) * LEAST(y3, COALESCE(c0, y3))) AS t14,
  SUM(LEAST(y3, COALESCE(c0, y3)) * LEAST(y2, COALESCE(c0, y2))) AS t15,
  COUNT(*) AS t16,
  SUM(y4) AS t17,
  SUM(y4 * y4) AS t18,
  SUM(y5) AS t19,
  SUM(y5 * y5) AS t20,
  SUM(y5 * y4) AS t21,
  SUM(y6) AS t22,
  SUM(y6 * y6) AS t23,
  SUM(y4 * y6) AS t24,
  SUM(y7) AS t25,
  SUM(y7 * y7) AS t26,
  SUM(y4 * y7) AS t27,
  SUM(y5 * y6) AS t28,
  SUM(y5 * y7) AS t29,
  SUM(y6 * y7) AS t30,
  COUNT(
    CASE
      WHEN first_seen <= CAST('2026-11-12 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN 1
    END
  ) AS t31,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-12 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN y8
    END
  ) AS t32,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-12 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN y8
    END
  ) AS t33,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-12 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN y9
    END
  ) AS t34,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-12 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN y9
    END
  ) AS t35,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-12 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN y9 * y8
    END
  ) AS t36,
  COUNT(*) AS t37,
  SUM(y10) AS t38,
  SUM(y10) AS t39,
  SUM(y11) AS t40,
  SUM(y11) AS t41,
  SUM(y11 * y10) AS t42,
  COUNT(*) AS t43,
  SUM(LEAST(y12, 5.0)) AS t44,
  SUM(LEAST(y12, 5.0) * LEAST(y12, 5.0)) AS t45,
  SUM(LEAST(y13, 5.0)) AS t46,
  SUM(LEAST(y13, 5.0) * LEAST(y13, 5.0)) AS t47,
  SUM(LEAST(y13, 5.0) * LEAST(y12, 5.0)) AS t48,
  COUNT(*) AS t49,
  SUM(LEAST(y14, COALESCE(c1, y14))) AS t50,
  SUM(LEAST(y14, COALESCE(c1, y14)) * LEAST(y14, COALESCE(c1, y14))) AS t51,
  SUM(LEAST(y15, COALESCE(c1, y15))) AS t52,
  SUM(LEAST(y15, COALESCE(c1, y15)) * LEAST(y15, COALESCE(c1, y15))) AS t53,
  SUM(LEAST(y15, COALESCE(c1, y15)) * LEAST(y14, COALESCE(c1, y14))) AS t54,
  COUNT(
    CASE
      WHEN first_seen <= CAST('2026-11-13 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN 1
    END
  ) AS t55,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-13 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN LEAST(y16, COALESCE(c2, y16))
    END
  ) AS t56,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-13 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN LEAST(y16, COALESCE(c2, y16)) * LEAST(y16, COALESCE(c2, y16))
    END
  ) AS t57,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-13 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN LEAST(y17, COALESCE(c2, y17))
    END
  ) AS t58,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-13 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN LEAST(y17, COALESCE(c2, y17)) * LEAST(y17, COALESCE(c2, y17))
    END
  ) AS t59,
  SUM(
    CASE
      WHEN first_seen <= CAST('2026-11-13 12:00:00.000000' AS TIMESTAMPNTZ)
      THEN LEAST(y17, COALESCE(c2, y17)) * LEAST(y16, COALESCE(c2, y16))
    END
  ) AS t60,
  MAX(c0) AS k0,
  MAX(c1) AS k1,
  MAX(c2) AS k2
FROM u
CROSS JOIN c
GROUP BY
  variation,
  s0,
  s1
