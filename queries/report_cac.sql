-- The CAC of every trajectory, per group of `tdscale report --by ${by}` (percentiles are taken
-- from an HDR histogram of these values).
SELECT coalesce(CAST(${by} AS VARCHAR), '(none)') AS grp, cac
FROM trajectory_metrics;
