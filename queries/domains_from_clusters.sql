-- The domain of each trajectory from the tools it calls (DESIGN.md, "Labels the data lacks";
-- `tdscale label --domains clusters` applies it).
--
-- Every call votes for the domain of its tool: the catalog's own label of the tool when it has
-- one, else the domain of the business cluster the tool is in (the keyword taxonomy or the
-- overrides of `clusters build`). A tool with labels of several domains (one name in several
-- catalogs) splits its vote. A trajectory none of whose calls has a domain (or that calls
-- nothing) votes with the tools it offers, one vote each. The domain with the most votes wins;
-- ties go to the catalog's label, then to the smaller name. `domain_source` says `catalog` when
-- a catalog label voted for the winner, else `cluster`.
WITH tool_labels AS (
    SELECT name AS tool, domain, 'catalog' AS src, 0 AS preference
    FROM tools WHERE domain IS NOT NULL
    UNION ALL
    SELECT tool, domain, 'cluster' AS src, 1 AS preference
    FROM (SELECT unnest(tool_names) AS tool, domain FROM clusters)
),
best AS (
    SELECT DISTINCT tool, domain, src
    FROM (SELECT *, min(preference) OVER (PARTITION BY tool) AS top FROM tool_labels)
    WHERE preference = top
),
weights AS (
    SELECT tool, domain, src, 1.0 / count(*) OVER (PARTITION BY tool) AS w FROM best
),
called AS (
    SELECT traj_id, tool, count(*) AS n
    FROM (SELECT traj_id, unnest(tool_sequence(messages)) AS tool FROM trajectories)
    GROUP BY traj_id, tool
),
called_votes AS (
    SELECT c.traj_id, w.domain, w.src, c.n * w.w AS votes
    FROM called c JOIN weights w ON w.tool = c.tool
),
offered_votes AS (
    SELECT o.traj_id, w.domain, w.src, w.w AS votes
    FROM (SELECT traj_id, t['name'] AS tool
          FROM (SELECT traj_id, unnest(tools) AS t FROM trajectories)) o
    JOIN weights w ON w.tool = o.tool
    WHERE o.traj_id NOT IN (SELECT traj_id FROM called_votes)
),
votes AS (
    SELECT traj_id, domain, sum(votes) AS votes, min(src) AS src
    FROM (SELECT * FROM called_votes UNION ALL SELECT * FROM offered_votes)
    GROUP BY traj_id, domain
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY traj_id ORDER BY votes DESC, src, domain) AS rk
    FROM votes
)
SELECT traj_id, domain, src AS domain_source
FROM ranked
WHERE rk = 1
