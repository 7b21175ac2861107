-- Diversity and complexity round by round: does diversity grow or collapse?
SELECT
    "round",
    strategy,
    trajectories,
    new_trajectories                      AS new,
    round(de_bits, 3)                     AS de_bits,
    round(rme_bits, 3)                    AS rme_bits,
    modes,
    round(cac_p50, 2)                     AS cac_p50,
    round(cac_p90, 2)                     AS cac_p90,
    round(cac_p99, 2)                     AS cac_p99,
    accepted,
    rejected,
    failed,
    round(acceptance_rate, 3)             AS acceptance,
    rejection_reasons
FROM rounds
ORDER BY "round", finished_at
