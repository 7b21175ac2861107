-- What is in the corpus: trajectories, calls and results per source and format.
SELECT
    t.source,
    t.format,
    count(*)                          AS trajectories,
    sum(t.num_tool_calls)             AS tool_calls,
    round(avg(t.num_tool_calls), 2)   AS avg_calls,
    round(avg(t.num_turns), 2)        AS avg_user_turns,
    sum(t.num_tokens)                 AS tokens,
    round(avg(t.reward), 3)           AS avg_reward
FROM trajectories t
GROUP BY t.source, t.format
ORDER BY trajectories DESC, t.source;

-- Tool results that are errors, per source.
SELECT source, count(*) AS calls, count(result) AS answered, sum(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors
FROM tool_calls
GROUP BY source
ORDER BY calls DESC, source;
