-- One row per trajectory with its reasoning mode, Cumulative Action Complexity, counts, tool
-- sequence and the MinHash of its user turns, computed from `messages` by the SQL functions.
--
-- This is the definition of the stored table `trajectory_metrics`: ingest, synthesis and
-- `tdscale gen` write these values, computed by the same functions, beside every `trajectories`
-- part, and queries read them there (a flat column costs a fraction of decoding `messages`).
-- The view is here for ad-hoc checks and for corpora whose stored metrics cannot be written.
-- `mode` is the label `reasoning_mode` when there is one, else the one derived from the actions; `steps`
-- is the number of calls CAC scores; `user_minhash` is minhash(user_text(messages), 64), what
-- deita_select and `tdscale split` compare. The columns are in the stored table's order.
CREATE OR REPLACE VIEW computed_trajectory_metrics AS
SELECT
    traj_id,
    source,
    format,
    domain,
    cluster_id,
    reasoning_mode,
    coalesce(reasoning_mode, reasoning_mode(messages))     AS mode,
    action_complexity(messages)                            AS cac,
    cardinality(step_complexity(messages))                 AS steps,
    num_turns,
    num_tool_calls,
    num_tokens,
    reward,
    cardinality(tools)                                     AS tools_offered,
    cardinality(array_distinct(tool_sequence(messages)))   AS tools_used,
    tool_sequence(messages)                                AS tool_sequence,
    minhash(user_text(messages), 64)                       AS user_minhash,
    "round"
FROM trajectories;
