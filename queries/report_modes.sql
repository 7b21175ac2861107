-- How many trajectories follow each reasoning mode, per group of `tdscale report --by ${by}`.
SELECT coalesce(CAST(${by} AS VARCHAR), '(none)') AS grp, mode, count(*) AS n
FROM trajectory_metrics
GROUP BY 1, 2
ORDER BY 1, n DESC, mode;
