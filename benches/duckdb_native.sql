-- DuckDB's own SQL for tdscale's per-trajectory metrics (DESIGN.md, "Metrics"), reading the
-- `trajectories` Parquet files tdscale wrote: no Python, no extension, only DuckDB's scan of the
-- nested `messages` column, `unnest`, window functions, lambdas and regular expressions. It is
-- the peer a DuckDB user would write; benches/compare.py times it and checks its per-trajectory
-- modes and CAC against tdscale's (benches/check_duckdb_native.py against the Python reference).
--
-- `{trajectories}` is replaced by a glob of the files. The result is the view `native_metrics`
-- (traj_id, domain, round, mode, cac), what tdscale stores in `trajectory_metrics`.
--
-- The argument leaves of a call are the scalar tokens of its JSON text (strings, numbers,
-- true/false/null) that are not object keys; a string leaf is compared unescaped.

CREATE OR REPLACE TEMP TABLE native_messages AS
WITH t AS (
    SELECT traj_id, messages FROM read_parquet('{trajectories}', hive_partitioning = true)
),
m AS (
    SELECT traj_id,
           unnest(generate_series(1, len(messages))) AS i,
           unnest(messages)                          AS msg
    FROM t
)
SELECT traj_id, i,
       msg.role                                     AS role,
       coalesce(msg.content, '')                    AS content,
       coalesce(len(msg.tool_calls), 0)             AS k,
       msg.tool_calls                               AS calls,
       -- The error rule: an `error` flag, text starting with "error", or a JSON object with an
       -- `error` key.
       msg.role = 'tool' AND (
           coalesce(msg.error, false)
           OR lower(left(trim(coalesce(msg.content, '')), 5)) = 'error'
           OR CASE WHEN starts_with(trim(coalesce(msg.content, '')), '{')
                        AND json_valid(trim(msg.content))
                   THEN json_type(trim(msg.content)) = 'OBJECT'
                        AND json_exists(trim(msg.content), '$.error')
                   ELSE false END
       )                                            AS is_error
FROM m;

-- Per message: the tool results before it and whether the last of them was an error.
CREATE OR REPLACE TEMP TABLE native_context AS
SELECT traj_id, i, role, content, k, calls,
       coalesce(list(content) FILTER (WHERE role = 'tool') OVER w, [])      AS earlier,
       coalesce(last_value(CASE WHEN role = 'tool' THEN is_error END IGNORE NULLS) OVER w, false)
                                                                             AS after_error
FROM native_messages
WINDOW w AS (PARTITION BY traj_id ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING);

-- One row per tool call, with its complexity term c(a_t) and whether it consumes an earlier result.
CREATE OR REPLACE TEMP TABLE native_calls AS
WITH c AS (
    SELECT traj_id, i, k, earlier,
           unnest(generate_series(1, k)) AS j,
           unnest(calls)                 AS call
    FROM native_context
    WHERE role = 'assistant' AND k > 0
),
tokens AS (
    SELECT traj_id, i, j, k, earlier, call.name AS name,
           CASE WHEN json_valid(call.arguments) THEN list_filter(
               regexp_extract_all(call.arguments,
                   '"(?:[^"\\]|\\.)*"\s*:?|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null'),
               lambda x: NOT ends_with(x, ':'))
           END AS leaves
    FROM c
),
carried AS (
    -- The values a call can carry from an earlier result: strings of at least 3 characters
    -- (unescaped), numbers other than 0 and 1 as written.
    SELECT *,
           list_filter(list_transform(coalesce(leaves, []), lambda x: CASE
               WHEN starts_with(x, '"') THEN
                   CASE WHEN length(json_extract_string(x, '$')) >= 3 THEN json_extract_string(x, '$') END
               WHEN x IN ('true', 'false', 'null') OR CAST(x AS DOUBLE) IN (0, 1) THEN NULL
               ELSE x END), lambda v: v IS NOT NULL) AS carried
    FROM tokens
)
SELECT traj_id, i, j, k, name,
       len(list_filter(carried, lambda v: list_bool_or(list_transform(earlier, lambda e: contains(e, v))))) > 0
                                                                            AS dep,
       coalesce(len(leaves), 0)                                             AS n_leaves,
       row_number() OVER (PARTITION BY traj_id, name ORDER BY i, j) = 1     AS new,
       name IN ('python', 'code_interpreter', 'execute_code', 'run_code', 'run_python')
                                                                            AS code
FROM carried;

-- The moves of the reasoning mode: one per assistant message, except that consecutive single
-- calls (not code, not after an error) form one run, `C<n>` when one of them consumes an earlier
-- result, else `S<n>`.
CREATE OR REPLACE TEMP TABLE native_moves AS
WITH a AS (
    SELECT x.traj_id, x.i, x.k, x.content, x.after_error, c.dep, c.code
    FROM native_context x
    LEFT JOIN native_calls c ON c.traj_id = x.traj_id AND c.i = x.i AND c.j = 1
    WHERE x.role = 'assistant'
),
single AS (
    SELECT traj_id, i, dep,
           i - row_number() OVER (PARTITION BY traj_id ORDER BY i) AS run
    FROM a
    WHERE k = 1 AND NOT code AND NOT after_error
),
bucketed AS (
    SELECT traj_id, min(i) AS pos,
           CASE WHEN bool_or(dep) THEN 'C' ELSE 'S' END
               || CASE WHEN count(*) >= 4 THEN '4+' ELSE count(*)::VARCHAR END AS move
    FROM single GROUP BY traj_id, run
)
SELECT traj_id, i AS pos,
       CASE WHEN k = 0 AND regexp_matches(content, '\?\s*$') THEN 'Q'
            WHEN k = 0 THEN 'A'
            WHEN k >= 2 THEN 'P' || CASE WHEN k >= 4 THEN '4+' ELSE k::VARCHAR END
            WHEN code THEN 'X'
            ELSE 'R' END AS move
FROM a
WHERE NOT (k = 1 AND NOT code AND NOT after_error)
UNION ALL
SELECT traj_id, pos, move FROM bucketed;

CREATE OR REPLACE TEMP VIEW native_metrics AS
WITH t AS (
    SELECT traj_id, domain, "round", reasoning_mode
    FROM read_parquet('{trajectories}', hive_partitioning = true)
),
modes AS (
    SELECT traj_id, string_agg(move, '>' ORDER BY first_pos) AS mode
    FROM (SELECT traj_id, move, min(pos) AS first_pos FROM native_moves GROUP BY traj_id, move)
    GROUP BY traj_id
),
cac AS (
    SELECT traj_id,
           sum(1 + 0.5 * ln(1 + n_leaves) + dep::INT + new::INT + 0.5 * (k >= 2)::INT + code::INT) AS cac
    FROM native_calls GROUP BY traj_id
)
SELECT t.traj_id, t.domain, t."round",
       coalesce(t.reasoning_mode, modes.mode, '') AS mode,
       coalesce(cac.cac, 0)                       AS cac
FROM t LEFT JOIN modes USING (traj_id) LEFT JOIN cac USING (traj_id);
