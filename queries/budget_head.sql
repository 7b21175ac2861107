-- Budget strategy `head`: more of the dominant domain first, the quantity-centric way of growing
-- a set. Domains in order of size (largest first), shuffled by seed within a domain.
-- Parameters: budget, seed (0), unit ('trajectories' or 'tokens').
WITH sizes AS (
    SELECT domain, count(*) AS n FROM trajectory_metrics GROUP BY domain
),
ordered AS (
    SELECT t.traj_id,
           CASE WHEN '${unit:trajectories}' = 'tokens' THEN t.num_tokens ELSE 1 END AS cost,
           row_number() OVER (ORDER BY s.n DESC, t.domain, seeded_hash(t.traj_id, ${seed:0}), t.traj_id) AS pick
    FROM trajectory_metrics t JOIN sizes s ON t.domain IS NOT DISTINCT FROM s.domain
),
walked AS (
    SELECT traj_id, pick, cost, sum(cost) OVER (ORDER BY pick ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS used
    FROM ordered
)
SELECT traj_id, pick, cost, used FROM walked WHERE used <= ${budget} ORDER BY pick;
