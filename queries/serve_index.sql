-- The trajectory index of `tdscale serve`: one row per trajectory with what the browser filters,
-- sorts and lists (the columns of `trajectory_metrics`, the lineage, and the start of the first
-- message), kept in memory so that a page of 10^6 trajectories does not decode every conversation.
SELECT
    traj_id,
    source,
    format,
    "round",
    domain,
    cluster_id,
    parent_id,
    batch_id,
    coalesce(reasoning_mode, reasoning_mode(messages))     AS mode,
    action_complexity(messages)                            AS cac,
    num_turns,
    num_tool_calls,
    num_tokens,
    reward,
    cardinality(tools)                                     AS tools_offered,
    cardinality(array_distinct(tool_sequence(messages)))   AS tools_used,
    substr(messages[1]['content'], 1, 160)                 AS preview
FROM trajectories
