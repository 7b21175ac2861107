#!/usr/bin/env python3
"""Runs BFCL's own AST checker (pip package bfcl-eval==2026.3.23) over an exported BFCL folder.

Every entry with a ground truth is checked with the ground truth itself as the model's answer
(the first acceptable value of each parameter; parameters whose first value is "" are left out);
with --mutate, one value of each answer is changed first, and every entry must then fail
(multi-turn entries are left out of that run).
Multi-turn entries (no executable backend) are checked to hold one parsable Python call per
ground-truth string, each naming a function of the entry's docs.

Prints {"checked": n, "valid": k, "failures": [...]} as JSON. Usage:
    bfcl_check.py EXPORT_DIR [--mutate]
"""

import ast
import json
import sys
import types
from pathlib import Path

# ast_checker imports the model registry (every provider's SDK) only to read one flag per model
# name; stand in for it so the checker runs without those SDKs.
stub = types.ModuleType("bfcl_eval.constants.model_config")


class _Cfg:
    underscore_to_dot = False


stub.MODEL_CONFIG_MAPPING = {"tdscale-check": _Cfg()}
sys.modules["bfcl_eval.constants.model_config"] = stub

try:
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
except ImportError as e:  # a clear failure, not a skip
    print(f"bfcl-eval is not installed ({e}): pip install --no-deps bfcl-eval==2026.3.23", file=sys.stderr)
    sys.exit(3)


def answer_from_truth(truth):
    out = []
    for call in truth:
        (name, params), = call.items()
        args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
        out.append({name: args})
    return out


def undict(v):
    """A possible-answer value of a dict parameter back to the dict itself."""
    if isinstance(v, dict):
        return {k: x[0] for k, x in v.items()}
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return [undict(x) for x in v]
    return v


def mutate(answer):
    for call in answer:
        (name, args), = call.items()
        for k, v in args.items():
            if isinstance(v, bool):
                args[k] = not v
            elif isinstance(v, (int, float)):
                args[k] = v + 7
            elif isinstance(v, str):
                args[k] = v + " changed"
            elif isinstance(v, list):
                args[k] = v + v[:1] if v else ["extra"]
            elif isinstance(v, dict):
                args[k] = {**v, "unexpected_key": 1}
            return answer
    (name, args), = answer[0].items()
    answer[0] = {name + "_wrong": args}
    return answer


def main():
    root = Path(sys.argv[1])
    do_mutate = "--mutate" in sys.argv
    checked, valid, failures = 0, 0, []
    for qfile in sorted(root.glob("BFCL_v4_*.json")):
        category = qfile.stem[len("BFCL_v4_"):]
        afile = root / "possible_answer" / qfile.name
        if not afile.exists():
            continue
        questions = {json.loads(l)["id"]: json.loads(l) for l in qfile.read_text().splitlines() if l.strip()}
        for line in afile.read_text().splitlines():
            if not line.strip():
                continue
            a = json.loads(line)
            q = questions[a["id"]]
            if category == "multi_turn" and do_mutate:
                continue
            checked += 1
            if category == "multi_turn":
                names = {f["name"] for f in q["function"]}
                ok = len(a["ground_truth"]) == len(q["question"])
                for turn in a["ground_truth"]:
                    for s in turn:
                        node = ast.parse(s, mode="eval").body
                        ok = ok and isinstance(node, ast.Call) and ast.unparse(node.func) in names
                if ok:
                    valid += 1
                else:
                    failures.append({"id": a["id"], "error": "a ground-truth call does not parse or names no function"})
                continue
            answer = answer_from_truth(a["ground_truth"])
            answer = [{n: {k: undict(v) for k, v in args.items()}} for c in answer for n, args in c.items()]
            if do_mutate:
                answer = mutate(answer)
            r = ast_checker(q["function"], answer, a["ground_truth"], Language.PYTHON, category, "tdscale-check")
            if r["valid"]:
                valid += 1
            else:
                failures.append({"id": a["id"], "error": r.get("error"), "answer": answer})
    print(json.dumps({"checked": checked, "valid": valid, "failures": failures}))


if __name__ == "__main__":
    main()
