-- Metrics of a selected subset (the table `selection`: traj_id, pick, cost, used).
SELECT
    count(*)                               AS trajectories,
    sum(m.num_tokens)                      AS tokens,
    domain_entropy(m.domain)               AS de_bits,
    reasoning_mode_entropy(m.mode)         AS rme_bits,
    percentile_cont(m.cac, 0.5)     AS cac_p50,
    percentile_cont(m.cac, 0.9)     AS cac_p90,
    count(DISTINCT m.domain)               AS domains,
    count(DISTINCT m.mode)                 AS modes,
    count(DISTINCT m.cluster_id)           AS clusters,
    coalesce(max(s.used), 0)               AS used
FROM selection s JOIN trajectory_metrics m ON s.traj_id = m.traj_id;
