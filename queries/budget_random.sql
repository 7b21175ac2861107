-- Budget strategy `random`: a uniform sample (the quantity baseline).
-- Parameters: budget, seed (0), unit ('trajectories' or 'tokens').
-- Walks the order and stops before the first trajectory that would exceed the budget.
WITH ordered AS (
    SELECT traj_id,
           CASE WHEN '${unit:trajectories}' = 'tokens' THEN num_tokens ELSE 1 END AS cost,
           row_number() OVER (ORDER BY seeded_hash(traj_id, ${seed:0}), traj_id) AS pick
    FROM trajectory_metrics
),
walked AS (
    SELECT traj_id, pick, cost, sum(cost) OVER (ORDER BY pick ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS used
    FROM ordered
)
SELECT traj_id, pick, cost, used FROM walked WHERE used <= ${budget} ORDER BY pick;
