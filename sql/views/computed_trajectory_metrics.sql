-- One row per trajectory with its reasoning mode, Cumulative Action Complexity and counts.
-- `mode` is the stored label when there is one, else the one derived from the actions.
CREATE OR REPLACE VIEW trajectory_metrics AS
SELECT
    traj_id,
    source,
    format,
    "round",
    domain,
    cluster_id,
    coalesce(reasoning_mode, reasoning_mode(messages))     AS mode,
    action_complexity(messages)                            AS cac,
    num_turns,
    num_tool_calls,
    num_tokens,
    reward,
    cardinality(tools)                                     AS tools_offered,
    cardinality(array_distinct(tool_sequence(messages)))   AS tools_used
FROM trajectories;
