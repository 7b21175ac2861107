-- One row per tool call, with the result that answered it and whether that result is an error.
-- Calls and results are paired by `tool_calls_of` (see src/metrics/tool_calls_of.rs).
CREATE OR REPLACE VIEW tool_calls AS
SELECT
    traj_id,
    "round",
    source,
    domain,
    c['msg_index']  AS msg_index,
    c['call_index'] AS call_index,
    c['id']         AS call_id,
    c['name']       AS tool_name,
    c['arguments']  AS arguments,
    c['result']     AS result,
    c['is_error']   AS is_error
FROM (
    SELECT traj_id, "round", source, domain, unnest(tool_calls_of(messages)) AS c
    FROM trajectories
);
