-- Budget strategy `deita`: score × diversity as DEITA does it: by score (CAC × reward), each
-- admitted only if its MinHash similarity to every selected trajectory is below the threshold.
-- The table function is deita_select (src/select/deita.rs).
-- Parameters: budget, unit ('trajectories' or 'tokens'), threshold (0.6); seed is not used.
SELECT traj_id, pick, cost, used FROM deita_select(${budget}, '${unit:trajectories}', ${threshold:0.6}) ORDER BY pick;
