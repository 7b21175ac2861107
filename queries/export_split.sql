-- The trajectories of one side of the split (`tdscale split`), in id order: what
-- `tdscale export bfcl` and `tdscale export tau2` write unless given another --query.
-- Parameter: split (test or train).
SELECT t.*
FROM trajectories t
JOIN splits s ON s.traj_id = t.traj_id
WHERE s.split = '${split:test}'
ORDER BY t.traj_id
