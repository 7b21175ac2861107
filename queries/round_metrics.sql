-- The corpus after evolution round ${round}: counts, diversity and complexity over every
-- trajectory of rounds ≤ ${round}. `tdscale evolve` appends this row (with the batch's counts)
-- to `rounds`.
SELECT
    count(*)                                          AS trajectories,
    count(*) FILTER (WHERE "round" = ${round})        AS new_trajectories,
    domain_entropy(domain)                            AS de_bits,
    reasoning_mode_entropy(mode)                      AS rme_bits,
    count(DISTINCT mode)                              AS modes,
    percentile_cont(cac, 0.5)                  AS cac_p50,
    percentile_cont(cac, 0.9)                  AS cac_p90,
    percentile_cont(cac, 0.99)                 AS cac_p99
FROM trajectory_metrics
WHERE "round" <= ${round}
