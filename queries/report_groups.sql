-- Diversity per group for `tdscale report --by ${by}`.
SELECT
    coalesce(CAST(${by} AS VARCHAR), '(none)')  AS grp,
    count(*)                                    AS trajectories,
    count(*) - count(domain)                    AS unlabeled_domain,
    domain_entropy(domain)                      AS de_bits,
    normalized_entropy(domain)                  AS de_normalized,
    reasoning_mode_entropy(mode)                AS rme_bits,
    normalized_entropy(mode)                    AS rme_normalized,
    count(DISTINCT mode)                        AS modes,
    count(DISTINCT domain)                      AS domains,
    avg(cac)                                    AS cac_mean,
    sum(num_tool_calls)                         AS tool_calls,
    sum(num_tokens)                             AS tokens
FROM trajectory_metrics
GROUP BY 1
ORDER BY 1;
