#!/usr/bin/env python3
"""Writes a generated collection of MCP servers, one `tools/list` file per server, for timing
`tdscale clusters build` at the size of the public MCP collections (~2,000 servers, 17k+ tools)
and for checking it at a smaller size (tests/it/cluster_quality.rs).

Each server has a container entity (a workspace, project, board…) and one or two entities
inside it, with the usual tools around them: create, list, search, get, update, delete. Tool
names come in the styles real servers use (snake_case, camelCase, kebab-case, a server prefix).
Every tool also takes parameters that sibling tools share without any data flowing (`limit`,
`query`, `cursor`, a `format` enumeration). All names and descriptions are generated here.

Besides the servers it writes `truth.jsonl`: every ordered pair (from, to) of one server where
`from` creates, lists or searches an entity and `to` takes that entity's id.

Usage: make_mcp_collection.py --servers 2000 --seed 1 --out DIR
"""

import argparse
import json
import os
import random

CONTAINERS = ["workspace", "project", "board", "account", "team", "folder", "store", "site",
              "portfolio", "organization", "garden", "library", "studio", "clinic", "fleet"]
ENTITIES = ["invoice", "ticket", "order", "booking", "note", "playlist", "track", "shipment",
            "campaign", "contact", "document", "dataset", "experiment", "alert", "incident",
            "device", "sensor", "recipe", "course", "lesson", "patient", "appointment",
            "listing", "category", "policy", "survey", "question", "coupon", "vehicle",
            "driver", "warehouse", "supplier", "candidate", "interview", "article", "author",
            "pipeline", "deployment", "secret", "webhook", "snippet", "bucket", "printer",
            "ingredient", "exercise", "workout", "habit", "milestone", "sprint", "epic"]
DOMAINS = ["finance", "travel", "devops", "health", "education", "retail", "media", "support",
           "logistics", "productivity"]
STYLES = ["snake", "camel", "kebab", "prefixed"]


def plural(w):
    if w.endswith("y") and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    if w.endswith(("s", "x", "ch", "sh")):
        return w + "es"
    return w + "s"


def name_of(style, server_word, words):
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "kebab":
        return "-".join(words)
    if style == "prefixed":
        return "_".join([server_word] + words)
    return "_".join(words)


def id_param(style, entity):
    return entity + "Id" if style == "camel" else entity + "_id"


def obj(props, required=()):
    return {"type": "object", "properties": props, "required": list(required)}


def server(rng, k):
    style = rng.choice(STYLES)
    word = "svc%d" % k
    c = rng.choice(CONTAINERS)
    ents = rng.sample([e for e in ENTITIES if e != c], rng.choice([1, 1, 2]))
    cid = id_param(style, c)
    shared = {
        "limit": {"type": "integer", "description": "Largest number of results"},
        "cursor": {"type": "string", "description": "Where the previous page ended"},
    }
    tools = []
    yields = {}  # tool name -> entity it returns ids of
    takes = {}   # tool name -> {entity: parameter}

    def add(words, desc, props, returns=None, takes_ids=()):
        n = name_of(style, word, words)
        tools.append({"name": n, "description": desc, "inputSchema": obj(props)})
        if returns:
            yields[n] = returns
        takes[n] = dict(takes_ids)

    add(["list", plural(c)], "Lists the %s you can access, with their ids." % plural(c),
        dict(shared), returns=c)
    add(["create", c], "Creates a %s. Returns it with its id." % c,
        {"title": {"type": "string", "description": "Title"}}, returns=c)
    if rng.random() < 0.5:
        add(["get", c], "Gets one %s by id." % c, {cid: {"type": "string"}}, takes_ids=[(c, cid)])
    for e in ents:
        eid = id_param(style, e)
        add(["create", e], "Creates a %s in a %s. Returns the new %s with its id." % (e, c, e),
            {cid: {"type": "string"}, "title": {"type": "string"},
             "notes": {"type": "string", "description": "Free text"}},
            returns=e, takes_ids=[(c, cid)])
        add(["list", plural(e)], "Lists the %s of a %s, a page at a time, with their ids." % (plural(e), c),
            dict(shared, **{cid: {"type": "string"}}), returns=e, takes_ids=[(c, cid)])
        if rng.random() < 0.4:
            add(["search", plural(e)], "Searches %s by text. Returns matching %s with their ids." % (plural(e), plural(e)),
                dict(shared, query={"type": "string", "description": "Text to match"}), returns=e)
        add(["get", e], "Gets one %s by id." % e, {eid: {"type": "string"}}, takes_ids=[(e, eid)])
        if rng.random() < 0.5:
            add(["update", e], "Changes the title or notes of a %s." % e,
                {eid: {"type": "string"}, "title": {"type": "string"}, "notes": {"type": "string"}},
                takes_ids=[(e, eid)])
        if rng.random() < 0.4:
            add(["delete", e], "Deletes a %s for good." % e, {eid: {"type": "string"}}, takes_ids=[(e, eid)])
    add(["export", "report"], "Exports a usage summary in a chosen format.",
        dict(shared, format={"type": "string", "enum": ["csv", "json"]},
             query={"type": "string", "description": "Filter text"}))
    truth = []
    for a, entity in yields.items():
        for b, ids in takes.items():
            if b != a and entity in ids:
                truth.append({"server": word, "from": a, "to": b, "field": ids[entity]})
    return {"server": word, "domain": rng.choice(DOMAINS), "tools": tools}, truth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    tools = 0
    with open(os.path.join(a.out, "truth.jsonl"), "w") as t:
        for k in range(a.servers):
            s, truth = server(rng, k)
            tools += len(s["tools"])
            with open(os.path.join(a.out, "%s.json" % s["server"]), "w") as f:
                json.dump(s, f)
            for row in truth:
                t.write(json.dumps(row) + "\n")
    print("%d servers, %d tools -> %s" % (a.servers, tools, a.out))


if __name__ == "__main__":
    main()
