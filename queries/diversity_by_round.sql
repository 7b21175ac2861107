-- Diversity and complexity per evolution round: does diversity grow or collapse?
SELECT
    "round",
    count(*)                                    AS trajectories,
    domain_entropy(domain)                      AS de_bits,
    reasoning_mode_entropy(mode)                AS rme_bits,
    normalized_entropy(mode)                    AS rme_normalized,
    count(DISTINCT mode)                        AS modes,
    percentile_cont(cac, 0.5)            AS cac_p50,
    percentile_cont(cac, 0.9)            AS cac_p90
FROM trajectory_metrics
GROUP BY "round"
ORDER BY "round";
