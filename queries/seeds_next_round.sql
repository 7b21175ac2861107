-- Seeds of the next evolution round: the long tail of the corpus (DESIGN.md, "Adaptive evolution").
--
--   score = w_surprisal · −log2 p(domain, mode)          rare (domain, reasoning mode) cells
--         + w_cac       · [CAC above the corpus median]   complex trajectories
--         + w_cluster   · [business cluster never used]   clusters synthesis has not touched
--
-- Ties, and everything when all weights are 0 (the uniform-random control), are broken by a
-- seeded hash of the id. A trajectory that already has children is not picked again.
-- mutation: deepen / broaden / shift, spread over the seeds by a seeded hash; `broaden` moves the
-- seed to another domain, preferring rare ones (w_rare_domain; 0 = any), with a donor trajectory
-- of that domain whose tools the blueprint uses. Without another domain it deepens instead.
--
-- Parameters: round (0 = the one after the last), n, w_surprisal, w_cac, w_cluster,
-- w_rare_domain, seed.
--   INSERT INTO synthesis_requests SELECT * FROM seeds_next_round
-- The selected clusters' tools come first: DataFusion builds its hash table from that side and,
-- when it is empty, never reads the trajectories' tool sequences for this lookup.
WITH seed_clusters AS (
    SELECT s.traj_id, min(k.cluster_id) AS cluster_id
    FROM (SELECT cluster_id, unnest(tool_names) AS tool FROM clusters WHERE selected) k
    JOIN (SELECT traj_id, unnest(tool_sequence) AS tool FROM trajectory_metrics) s
      ON s.tool = k.tool
    GROUP BY s.traj_id
),
base AS (
    SELECT m.traj_id, coalesce(m.domain, 'unknown') AS domain, m.mode, m.cac,
           coalesce(m.cluster_id, c.cluster_id) AS cluster_id
    FROM trajectory_metrics m
    LEFT JOIN seed_clusters c ON c.traj_id = m.traj_id
),
-- The cell sizes, total and CAC median as windows over one scan of `base`: a CTE used by
-- several joins is planned once per use, and each use would compute every trajectory's mode
-- and CAC again.
measured AS (
    SELECT b.*,
           count(*) OVER (PARTITION BY b.domain, b.mode) AS cell_n,
           count(*) OVER () AS total,
           median(b.cac) OVER () AS cac_median
    FROM base b
),
used_clusters AS (
    SELECT DISTINCT cluster_id FROM trajectories WHERE "round" > 0 AND cluster_id IS NOT NULL
),
used_seeds AS (SELECT DISTINCT parent_id FROM trajectories WHERE parent_id IS NOT NULL),
domains AS (
    SELECT coalesce(domain, 'unknown') AS domain, count(*) AS n, min(traj_id) AS donor_id
    FROM trajectories GROUP BY coalesce(domain, 'unknown')
),
next_round AS (
    SELECT CAST(CASE WHEN ${round:0} > 0 THEN ${round:0} ELSE coalesce(max("round"), 0) + 1 END AS INT) AS r
    FROM trajectories
),
scored AS (
    SELECT b.traj_id AS seed_id, b.domain, b.mode, b.cac, b.cluster_id,
           ${w_surprisal:1.0} * -log2(CAST(b.cell_n AS DOUBLE) / b.total)
         + ${w_cac:1.0} * CASE WHEN b.cac > b.cac_median THEN 1.0 ELSE 0.0 END
         + ${w_cluster:4.0} * CASE WHEN b.cluster_id IS NOT NULL AND u.cluster_id IS NULL THEN 1.0 ELSE 0.0 END
           AS score
    FROM measured b
    LEFT JOIN used_clusters u ON u.cluster_id = b.cluster_id
    LEFT JOIN used_seeds p ON p.parent_id = b.traj_id
    WHERE p.parent_id IS NULL
),
picked AS (
    SELECT s.*, n.r
    FROM next_round n CROSS JOIN scored s
    ORDER BY s.score DESC, seeded_hash(s.seed_id, ${seed:0} + n.r), s.seed_id
    LIMIT ${n:200}
),
-- Every other domain is a candidate target of a seed (none when there is no other domain).
target_weights AS (
    SELECT p.*, d.domain AS target_domain, d.donor_id,
           power(CAST(d.n AS DOUBLE), ${w_rare_domain:1.0})
           * (1.0 + CAST(abs(seeded_hash(p.seed_id || '/' || d.domain, ${seed:0})) % 1000 AS DOUBLE) / 1000.0)
           AS weight
    FROM picked p LEFT JOIN domains d ON d.domain <> p.domain
),
targets AS (
    SELECT *, row_number() OVER (PARTITION BY seed_id ORDER BY weight, target_domain) AS rk
    FROM target_weights
)
SELECT
    seed_id,
    r AS "round",
    CASE abs(seeded_hash(seed_id, ${seed:0} + 7 * r)) % 3
        WHEN 0 THEN 'deepen'
        WHEN 1 THEN CASE WHEN target_domain IS NULL THEN 'deepen' ELSE 'broaden' END
        ELSE 'shift'
    END AS mutation,
    score,
    domain,
    mode AS reasoning_mode,
    cac,
    cluster_id,
    target_domain,
    donor_id
FROM targets
WHERE rk = 1
ORDER BY score DESC, seed_id
