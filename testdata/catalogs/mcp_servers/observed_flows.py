#!/usr/bin/env python3
"""Observed data flows between tools in OpenAI-style trajectories.

For every trajectory, a flow A -> B on field F is seen when a leaf of the arguments of a call of B
(under B's top-level parameter F) occurs verbatim in the content of an earlier tool message that
answered a call of A. A leaf counts when it is a string of at least 3 characters, or a number other
than 0 and 1 as written in the arguments' JSON text (so `12` and `12.0` are different texts).
Booleans and null never count. A string also counts when its JSON-escaped form occurs (tool
contents are JSON text, so a value holding a quote or a non-ASCII character is escaped there).

For each (A, B, F) the output gives the number of trajectories in which the flow occurs at least
once and the leaf paths seen, with two hints for judging it: in how many of those trajectories the
value had also been typed in a user message before B's call (it may have come from the user), and
in how many every call of A that returned it had also received it as an argument (A only echoed
its own input).

Usage: observed_flows.py TRAJECTORIES.json [OUT.json]
(default input: ../shared/data/tau-bench/gpt-4o-airline.json from the project root; default
output: tau_bench_airline_flows.json next to this script).
"""

import json
import os
import sys
from collections import defaultdict


class RawNumber:
    """A number kept as the text it was written with."""

    def __init__(self, text):
        self.text = text

    def is_trivial(self):
        return float(self.text) in (0.0, 1.0)


def parse_args_text(text):
    """Parses a call's arguments, keeping numbers as written."""
    return json.loads(text, parse_int=RawNumber, parse_float=RawNumber)


def leaves(value, path):
    """(path, text) of the leaves that can carry a value between tools."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v, f"{path}[]")
    elif isinstance(value, RawNumber):
        if not value.is_trivial():
            yield path, value.text
    elif isinstance(value, str):
        if len(value) >= 3:
            yield path, value
    # bool and None: never a carried value


def occurs(text, content):
    if text in content:
        return True
    escaped = json.dumps(text)[1:-1]
    return escaped != text and escaped in content


def flows_of(traj):
    """Yields (A, B, field, path, value_was_typed_by_user, only_echoed_by_a) for one trajectory."""
    call_name = {}
    call_args = {}
    answered = []  # (tool name, content, arguments text of the answered call) so far
    user_text = []
    for msg in traj:
        role = msg.get("role")
        if role == "user" and isinstance(msg.get("content"), str):
            user_text.append(msg["content"])
        elif role == "tool":
            name = call_name.get(msg.get("tool_call_id"), msg.get("name"))
            content = msg.get("content")
            if not isinstance(content, str):
                content = json.dumps(content)
            answered.append((name, content, call_args.get(msg.get("tool_call_id"), "")))
        for call in msg.get("tool_calls") or []:
            fn = call.get("function", {})
            b = fn.get("name")
            call_name[call.get("id")] = b
            raw = fn.get("arguments") or "{}"
            call_args[call.get("id")] = raw if isinstance(raw, str) else json.dumps(raw)
            try:
                args = parse_args_text(raw) if isinstance(raw, str) else raw
            except json.JSONDecodeError:
                continue
            if not isinstance(args, dict):
                continue
            for path, text in leaves(args, ""):
                field = path.split(".")[0].split("[")[0]
                typed = any(occurs(text, u) for u in user_text)
                sources = defaultdict(list)
                for a, content, a_args in answered:
                    if occurs(text, content):
                        sources[a].append(occurs(text, a_args))
                for a, echoed in sources.items():
                    yield a, b, field, path, typed, all(echoed)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        root, "..", "shared", "data", "tau-bench", "gpt-4o-airline.json")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "tau_bench_airline_flows.json")
    if not os.path.exists(src):
        sys.exit(f"trajectory file not found: {src}; pass its path as the first argument")
    with open(src) as f:
        items = json.load(f)

    trajs = defaultdict(set)
    paths = defaultdict(set)
    typed = defaultdict(set)
    not_echo = defaultdict(set)
    for i, item in enumerate(items):
        for a, b, field, path, was_typed, echoed in flows_of(item.get("traj") or []):
            key = (a, b, field)
            trajs[key].add(i)
            paths[key].add(path)
            if was_typed:
                typed[key].add(i)
            if not echoed:
                not_echo[key].add(i)

    flows = [
        {
            "from": a,
            "to": b,
            "field": field,
            "trajectories": len(trajs[(a, b, field)]),
            "leaf_paths": sorted(paths[(a, b, field)]),
            "trajectories_where_value_was_also_typed_by_user": len(typed[(a, b, field)]),
            "trajectories_where_a_only_echoed_its_own_argument":
                len(trajs[(a, b, field)] - not_echo[(a, b, field)]),
        }
        for (a, b, field) in trajs
    ]
    flows.sort(key=lambda f: (-f["trajectories"], f["from"], f["to"], f["field"]))
    result = {
        "source": "sierra-research/tau-bench historical_trajectories, gpt-4o airline "
                  "(read in place from shared/data/tau-bench/gpt-4o-airline.json)",
        "rule": "a string leaf (>= 3 characters) or a numeric leaf other than 0 and 1 (as written "
                "in its JSON text) of B's arguments occurs verbatim in the content of an earlier "
                "tool message that answered a call of A",
        "trajectories": len(items),
        "tool_calls": sum(len(m.get("tool_calls") or []) for it in items for m in it.get("traj") or []),
        "flows": flows,
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"{len(flows)} flows from {len(items)} trajectories -> {out}")


if __name__ == "__main__":
    main()
