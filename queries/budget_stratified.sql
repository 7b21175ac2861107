-- Budget strategy `stratified`: round-robin over (domain, reasoning mode) cells, so every cell
-- gets its share. Domains take turns; within a domain its modes take turns; the seed shuffles
-- the order inside each cell and the order of the turns.
-- Parameters: budget, seed (0), unit ('trajectories' or 'tokens').
WITH in_cell AS (
    SELECT traj_id, domain, mode,
           CASE WHEN '${unit:trajectories}' = 'tokens' THEN num_tokens ELSE 1 END AS cost,
           row_number() OVER (PARTITION BY domain, mode ORDER BY seeded_hash(traj_id, ${seed:0}), traj_id) AS turn_in_cell
    FROM trajectory_metrics
),
in_domain AS (
    SELECT *, row_number() OVER (PARTITION BY domain ORDER BY turn_in_cell, seeded_hash(coalesce(mode, ''), ${seed:0}), mode) AS turn_in_domain
    FROM in_cell
),
ordered AS (
    SELECT traj_id, cost,
           row_number() OVER (ORDER BY turn_in_domain, seeded_hash(coalesce(domain, ''), ${seed:0}), domain) AS pick
    FROM in_domain
),
walked AS (
    SELECT traj_id, pick, cost, sum(cost) OVER (ORDER BY pick ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS used
    FROM ordered
)
SELECT traj_id, pick, cost, used FROM walked WHERE used <= ${budget} ORDER BY pick;
