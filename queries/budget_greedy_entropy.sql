-- Budget strategy `greedy_entropy`: greedy maximisation of the joint entropy of (domain, mode),
-- ties broken by CAC. A greedy walk is not a set operation, so it is the table function
-- greedy_entropy (src/select/greedy_entropy.rs).
-- Parameters: budget, seed (0), unit ('trajectories' or 'tokens').
SELECT traj_id, pick, cost, used FROM greedy_entropy(${budget}, ${seed:0}, '${unit:trajectories}') ORDER BY pick;
