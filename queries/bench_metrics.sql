-- The benchmark's metrics query: per domain and per round, the trajectories, DE, RME, and mean
-- and p90 CAC, in one pass over trajectory_metrics.
SELECT
    domain,
    "round",
    count(*)                              AS trajectories,
    domain_entropy(domain)                AS de_bits,
    reasoning_mode_entropy(mode)          AS rme_bits,
    avg(cac)                              AS cac_mean,
    approx_percentile_cont(cac, 0.9)      AS cac_p90
FROM trajectory_metrics
GROUP BY GROUPING SETS ((domain), ("round"))
ORDER BY "round", domain;
