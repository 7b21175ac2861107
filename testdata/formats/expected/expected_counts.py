"""Independent reading of the dialect fixtures: writes testdata/formats/expected/EXPECTED.json.

These two files sit in a subfolder because every top-level file of testdata/formats is ingested as a
trajectory file by `tdscale demo` and by integration tests.

This script does not use tdscale. It reads every fixture in the on-disk format it imitates (following
the public documentation and code of each tool) and counts what a correct ingest must store:
trajectories and their source ids, messages by role, tool calls (with names), tool results, results
flagged as errors, reasoning parts, parts kept in metadata, and the records that must be rejected
(with the reason in words). Catalog files give services and tools instead.

Counting rules, shared by every dialect (the per-dialect mapping is in the readers below):
  * `system` is true when the source has a system prompt: a leading system/developer message, a
    record-level system/instructions field, or a session's base instructions. Leading system and
    developer messages are not counted as messages; a later one counts under role `system`.
  * Consecutive source pieces that one model response produced (parallel calls, a reasoning item
    and the call it led to, Claude Code lines sharing one message id, OpenHands actions sharing one
    model response) make ONE assistant message.
  * Every tool result is one `tool` message, paired to its call by id when the source gives one.
  * `reasoning_parts` counts the source pieces whose text lands in `reasoning` (a thinking block, a
    reasoning part, one summary or reasoning text of a reasoning item, a non-empty thought).
  * `metadata_parts` counts content pieces kept in metadata instead of a column: images, audio,
    files, redacted thinking, reasoning items with only encrypted content, built-in server tool
    items (web search) and images inside tool results.
  * `metadata_events` counts whole source lines/events that carry no message (session summaries,
    token counts, state changes, turn contexts, snapshots).
  * A record with a content part of an unknown type that carries text, a call whose arguments
    cannot be read, or a call without a name is rejected whole; a session log with a line that is
    not JSON is rejected whole (the session is one record).

Run: python3 testdata/formats/expected/expected_counts.py   (needs pyarrow and the zstd command)
"""

import gzip
import json
import os
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(os.path.dirname(HERE))


class Reject(Exception):
    """The record must be rejected; the message is the reason."""


# ----------------------------------------------------------------------------- canonical builder
class Conv:
    """Accumulates canonical messages for one trajectory and counts them."""

    def __init__(self):
        self.msgs = []  # dicts: role, text (bool), reasoning (int), calls [(id, name)], tool_call_id, error
        self.system = False
        self.tools = 0
        self.metadata_parts = 0
        self.metadata_events = 0
        self.reward = None
        self.pending = []  # calls waiting for a result: (id, name)

    def message(self, role):
        m = {"role": role, "reasoning": 0, "calls": [], "error": False}
        self.msgs.append(m)
        if role in ("user", "system", "developer"):
            self.pending = []  # a new turn: calls left unanswered stay unanswered
        return m

    def assistant(self):
        m = self.message("assistant")
        self.pending = []
        return m

    def call(self, m, cid, name):
        if not isinstance(name, str) or not name:
            raise Reject("a tool call has no function name")
        m["calls"].append((cid, name))
        self.pending.append((cid, name))

    def result(self, cid=None, error=False):
        m = self.message("tool")
        m["error"] = bool(error)
        idx = None
        if cid is not None:
            for i, (pid, _) in enumerate(self.pending):
                if pid == cid:
                    idx = i
                    break
        if idx is None and self.pending:
            idx = 0
        m["paired"] = self.pending.pop(idx)[1] if idx is not None else None
        return m

    def counts(self):
        msgs = list(self.msgs)
        while msgs and msgs[0]["role"] in ("system", "developer"):
            self.system = True
            msgs.pop(0)
        roles = Counter("system" if m["role"] == "developer" else m["role"] for m in msgs)
        calls = [name for m in msgs for _, name in m["calls"]]
        return {
            "system": self.system,
            "tools": self.tools,
            "messages": {r: roles.get(r, 0) for r in ("user", "assistant", "tool", "system")},
            "tool_calls": len(calls),
            "call_names": dict(sorted(Counter(calls).items())),
            "tool_results": sum(1 for m in msgs if m["role"] == "tool"),
            "unpaired_results": sum(1 for m in msgs if m["role"] == "tool" and m.get("paired") is None),
            "error_results": sum(1 for m in msgs if m["role"] == "tool" and m["error"]),
            "reasoning_parts": sum(m["reasoning"] for m in msgs),
            "metadata_parts": self.metadata_parts,
            "metadata_events": self.metadata_events,
            "reward": self.reward,
        }


def traj(source_id, conv, record):
    out = {"source_id": source_id, "record": record}
    out.update(conv.counts())
    return out


def parse_json_text(text, what):
    try:
        return json.loads(text)
    except (TypeError, ValueError) as e:
        raise Reject(f"{what} is not valid JSON ({e.__class__.__name__})")


def has_text(part):
    return any(isinstance(part.get(k), str) and part.get(k) for k in ("text", "value", "refusal", "content", "thinking"))


# ----------------------------------------------------------------------------- OpenAI chat (string or parts)
OPENAI_TEXT_PARTS = {"text": "text", "input_text": "text", "output_text": "text", "refusal": "refusal"}
OPENAI_META_PARTS = {"image_url", "input_image", "input_audio", "file", "input_file", "image", "audio", "video_url"}


def openai_content(conv, m, content):
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise Reject("content is neither text nor a list of parts")
    for p in content:
        if isinstance(p, str):
            continue
        t = p.get("type")
        if t in OPENAI_TEXT_PARTS:
            if not isinstance(p.get(OPENAI_TEXT_PARTS[t]), str):
                raise Reject(f"a `{t}` part has no text")
        elif t in OPENAI_META_PARTS:
            conv.metadata_parts += 1
        elif has_text(p):
            raise Reject(f"content part of unknown type `{t}` carries text")
        else:
            conv.metadata_parts += 1


def openai_messages(conv, messages):
    for msg in messages:
        role = msg.get("role")
        if role == "function":
            role = "tool"
        if role == "tool":
            m = conv.result(msg.get("tool_call_id"), error=bool(msg.get("error") or msg.get("is_error")))
        elif role == "assistant":
            m = conv.assistant()
        else:
            m = conv.message(role)
        openai_content(conv, m, msg.get("content"))
        for key in ("reasoning_content", "reasoning", "thinking"):
            if isinstance(msg.get(key), str) and msg[key]:
                m["reasoning"] += 1
        for c in msg.get("tool_calls") or []:
            fn = c.get("function", c)
            args = fn.get("arguments")
            if isinstance(args, str):
                parse_json_text(args, "tool call arguments")
            conv.call(m, c.get("id"), fn.get("name"))
        if msg.get("function_call"):
            conv.call(m, None, msg["function_call"].get("name"))


def tools_count(value):
    if value is None or value == "":
        return 0
    if isinstance(value, str):
        value = parse_json_text(value, "tools")
    return len(value) if isinstance(value, list) else 1


def read_openai_record(rec, messages_key="messages"):
    conv = Conv()
    openai_messages(conv, rec[messages_key])
    conv.tools = tools_count(rec.get("tools"))
    if rec.get("system"):
        conv.system = True
    return conv


# ----------------------------------------------------------------------------- LLaMA-Factory v1 typed parts
LF_MEDIA = {"image_url", "video_url", "audio_url"}


def lf_call_objects(value, what):
    v = parse_json_text(value, what)
    items = v if isinstance(v, list) else [v]
    for c in items:
        if not isinstance(c, dict) or "name" not in c or "arguments" not in c:
            raise Reject(f"{what} must be a JSON object with `name` and `arguments`")
    return items


def read_llamafactory_record(rec):
    conv = Conv()
    for msg in rec["messages"]:
        role = msg["role"]
        if role == "tool":
            m = conv.result(None)
        elif role == "assistant":
            m = conv.assistant()
        else:
            m = conv.message(role)
        for p in msg["content"]:
            t, v = p.get("type"), p.get("value")
            if t == "text":
                pass
            elif t == "reasoning":
                m["reasoning"] += 1
            elif t in ("tool_call", "tool_calls"):
                for c in lf_call_objects(v, f"`{t}` part value"):
                    conv.call(m, None, c["name"])
            elif t == "tools":
                conv.tools += tools_count(v)
            elif t in LF_MEDIA:
                conv.metadata_parts += 1
            elif isinstance(v, str) and v:
                raise Reject(f"content part of unknown type `{t}` carries text")
            else:
                conv.metadata_parts += 1
    conv.tools += tools_count(rec.get("tools"))
    return conv


# ----------------------------------------------------------------------------- Anthropic content blocks
def anthropic_assistant_blocks(conv, m, blocks):
    for b in blocks:
        t = b.get("type")
        if t == "text":
            pass
        elif t == "thinking":
            m["reasoning"] += 1
        elif t == "redacted_thinking":
            conv.metadata_parts += 1
        elif t in ("tool_use", "server_tool_use"):
            if not isinstance(b.get("input"), dict):
                raise Reject("tool_use input is not a JSON object")
            conv.call(m, b.get("id"), b.get("name"))
        elif t in ("image", "document"):
            conv.metadata_parts += 1
        elif has_text(b):
            raise Reject(f"content block of unknown type `{t}` carries text")
        else:
            conv.metadata_parts += 1


def anthropic_user_blocks(conv, blocks):
    rest = []
    for b in blocks:
        if b.get("type") == "tool_result":
            conv.result(b.get("tool_use_id"), error=b.get("is_error") is True)
            content = b.get("content")
            if isinstance(content, list):
                for c in content:
                    if c.get("type") in ("image", "document"):
                        conv.metadata_parts += 1
                    elif c.get("type") != "text" and has_text(c):
                        raise Reject(f"tool_result block of unknown type `{c.get('type')}` carries text")
        else:
            rest.append(b)
    if rest:
        conv.message("user")
        for b in rest:
            t = b.get("type")
            if t in ("image", "document"):
                conv.metadata_parts += 1
            elif t != "text":
                if has_text(b):
                    raise Reject(f"content block of unknown type `{t}` carries text")
                conv.metadata_parts += 1


def anthropic_message(conv, role, content, merge_into=None):
    if role == "assistant":
        m = merge_into or conv.assistant()
        if isinstance(content, str):
            return m
        anthropic_assistant_blocks(conv, m, content)
        return m
    if isinstance(content, str):
        conv.message("user")
    else:
        anthropic_user_blocks(conv, content)
    return None


def read_anthropic_record(rec):
    conv = Conv()
    if rec.get("system"):
        conv.system = True
    conv.tools = len(rec.get("tools") or [])
    for msg in rec["messages"]:
        anthropic_message(conv, msg["role"], msg["content"])
    return conv


# ----------------------------------------------------------------------------- OpenAI Responses items (also Codex)
CALL_ITEMS = {"function_call", "custom_tool_call", "local_shell_call", "shell_call", "apply_patch_call"}
OUTPUT_ITEMS = {"function_call_output", "custom_tool_call_output", "local_shell_call_output", "shell_call_output",
                "apply_patch_call_output"}
BUILTIN_ITEMS = {"web_search_call", "file_search_call", "image_generation_call", "code_interpreter_call", "computer_call",
                 "computer_call_output", "mcp_call", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response",
                 "item_reference", "compaction", "compaction_summary", "ghost_snapshot", "tool_search_call",
                 "tool_search_output"}
RESP_TEXT = {"input_text": "text", "output_text": "text", "refusal": "refusal", "text": "text"}
RESP_META = {"input_image", "input_file", "input_audio"}


class ItemReader:
    """Turns a sequence of Responses-API items into canonical messages."""

    def __init__(self, conv):
        self.conv = conv
        self.open = None  # the assistant message being built

    def _assistant(self):
        if self.open is None:
            self.open = self.conv.assistant()
        return self.open

    def _content(self, content):
        if isinstance(content, str) or content is None:
            return
        for p in content:
            t = p.get("type")
            if t in RESP_TEXT:
                if not isinstance(p.get(RESP_TEXT[t]), str):
                    raise Reject(f"an `{t}` part has no text")
            elif t in RESP_META:
                self.conv.metadata_parts += 1
            elif has_text(p):
                raise Reject(f"content part of unknown type `{t}` carries text")
            else:
                self.conv.metadata_parts += 1

    def item(self, it):
        t = it.get("type", "message" if "role" in it else None)
        conv = self.conv
        if t == "message":
            role = it.get("role")
            if role == "assistant":
                if self.open is None or self.open.get("text") or self.open["calls"]:
                    self.open = conv.assistant()
                self.open["text"] = True
            else:
                self.open = None
                conv.message(role)
            self._content(it.get("content"))
        elif t == "reasoning":
            if self.open is not None and (self.open.get("text") or self.open["calls"]):
                self.open = None
            m = self._assistant()
            n = sum(1 for s in it.get("summary") or [] if s.get("text")) + \
                sum(1 for c in it.get("content") or [] if c.get("text"))
            if n:
                m["reasoning"] += n
            else:
                conv.metadata_parts += 1
        elif t in CALL_ITEMS:
            m = self._assistant()
            if t == "function_call":
                parse_json_text(it.get("arguments"), "function_call arguments")
                name = it.get("name")
            elif t == "custom_tool_call":
                name = it.get("name")
            elif t == "local_shell_call":
                name = "local_shell"
            elif t == "shell_call":
                name = "shell"
            else:
                name = "apply_patch"
            conv.call(m, it.get("call_id"), name)
        elif t in OUTPUT_ITEMS:
            self.open = None
            cid = it.get("id") if t == "local_shell_call_output" and "call_id" not in it else it.get("call_id")
            out = it.get("output")
            error = isinstance(out, dict) and out.get("success") is False
            conv.result(cid, error=error)
            if isinstance(out, list):
                for p in out:
                    if p.get("type") in RESP_META:
                        conv.metadata_parts += 1
        elif t in BUILTIN_ITEMS:
            conv.metadata_parts += 1
        else:
            raise Reject(f"unknown item type `{t}`")


def read_responses_record(rec):
    conv = Conv()
    if rec.get("instructions"):
        conv.system = True
    conv.tools = len(rec.get("tools") or [])
    reader = ItemReader(conv)
    inp = rec.get("input")
    if isinstance(inp, str):
        conv.message("user")
    else:
        for it in inp or []:
            reader.item(it)
    for it in rec.get("output") or []:
        reader.item(it)
    return conv


# ----------------------------------------------------------------------------- Codex CLI rollouts
def read_lines(path):
    """JSON lines of a session log; a line that is not JSON rejects the whole session."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append((n, json.loads(line)))
            except ValueError:
                raise Reject(f"line {n} is not complete JSON (cut off?); the session it belongs to is rejected") from None
    return out


def read_codex(path):
    lines = read_lines(path)
    conv = Conv()
    reader = ItemReader(conv)
    sid = None
    for _, d in lines:
        if "record_type" in d:
            continue
        if "type" not in d and "id" in d:  # legacy first line
            sid = d["id"]
            if d.get("instructions"):
                conv.system = True
            continue
        if "payload" in d:
            kind, payload = d["type"], d["payload"]
            if kind == "session_meta":
                sid = payload.get("id")
                if payload.get("instructions") or (payload.get("base_instructions") or {}).get("text"):
                    conv.system = True
            elif kind == "response_item":
                reader.item(payload)
            else:  # event_msg, turn_context, compacted
                conv.metadata_events += 1
        else:  # legacy bare response item
            reader.item(d)
    return [(sid, conv)]


# ----------------------------------------------------------------------------- Claude Code sessions
CC_MESSAGE_TYPES = {"user", "assistant"}


def read_claude_code(path):
    lines = read_lines(path)
    convs = {}
    order = []
    last_msg_id = {}
    meta_events = 0
    for _, d in lines:
        if d.get("type") not in CC_MESSAGE_TYPES:
            meta_events += 1
            continue
        key = d["sessionId"] if not d.get("isSidechain") else f"{d['sessionId']}/{d.get('agentId')}"
        if key not in convs:
            convs[key] = Conv()
            order.append(key)
        conv = convs[key]
        msg = d["message"]
        if d["type"] == "assistant":
            mid = msg.get("id")
            same = last_msg_id.get(key) == mid and conv.msgs and conv.msgs[-1]["role"] == "assistant"
            anthropic_message(conv, "assistant", msg["content"], merge_into=conv.msgs[-1] if same else None)
            last_msg_id[key] = mid
        else:
            anthropic_message(conv, "user", msg["content"])
            last_msg_id[key] = None
    if order:
        convs[order[0]].metadata_events += meta_events
    return [(k, convs[k]) for k in order]


# ----------------------------------------------------------------------------- SWE-agent .traj
def read_swe_agent(path):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    hist = d.get("history")
    if not isinstance(hist, list):
        raise Reject("`history` is not a list of messages")
    conv = Conv()
    prev = None
    for h in hist:
        role = h.get("role")
        if role == "tool":
            ids = h.get("tool_call_ids") or [None]
            conv.result(ids[0])
        elif role == "user" and prev is not None and prev.get("role") == "assistant" and prev.get("action") \
                and not h.get("is_demo"):
            conv.result(None)  # 0.x / thought-action mode: the observation answers the action
        elif role == "assistant":
            m = conv.assistant()
            if isinstance(h.get("thought"), str) and h["thought"]:
                m["reasoning"] += 1
            for b in h.get("thinking_blocks") or []:
                if b.get("thinking"):
                    m["reasoning"] += 1
            if h.get("tool_calls"):
                for c in h["tool_calls"]:
                    fn = c.get("function") or {}
                    parse_json_text(fn.get("arguments", "{}"), "tool call arguments")
                    conv.call(m, c.get("id"), fn.get("name"))
            elif isinstance(h.get("action"), str) and h["action"].strip():
                conv.call(m, None, "bash")  # the action is a command line of the agent's shell
        else:
            conv.message(role)
        prev = h
    stem = os.path.basename(path)[: -len(".traj")]
    return [(stem, conv)]


# ----------------------------------------------------------------------------- OpenHands events
OH_NONFC_NAMES = {"run": "execute_bash", "run_ipython": "execute_ipython_cell", "read": "str_replace_editor",
                  "edit": "str_replace_editor", "write": "str_replace_editor", "browse": "browser",
                  "browse_interactive": "browser", "think": "think", "finish": "finish", "delegate": "delegate",
                  "reject": "reject", "task_tracking": "task_tracker"}
OH_BOOKKEEPING_ACTIONS = {"recall", "change_agent_state", "null", "condensation", "condensation_request", "pause",
                          "resume", "stop", "loop_recovery", "push", "send_pr", "start"}
OH_BOOKKEEPING_OBS = {"recall", "agent_state_changed", "null", "condense", "loop_detection", "user_rejected", "delegate"}


def read_openhands_events(events):
    conv = Conv()
    call_of_action = {}  # event id -> call id
    group = {}  # model response id -> assistant message
    for e in events:
        if "action" in e:
            args = e.get("args")
            if not isinstance(args, dict):
                raise Reject(f"action event {e.get('id')} has args that are not a JSON object")
            a = e["action"]
            if a == "system":
                conv.system = True
                conv.tools = len(args.get("tools") or [])
                continue
            if a == "message":
                if e.get("source") == "user":
                    conv.message("user")
                else:
                    conv.assistant()
                urls = (args.get("image_urls") or []) + (args.get("images_urls") or [])
                conv.metadata_parts += len(urls)
                continue
            if a in OH_BOOKKEEPING_ACTIONS:
                conv.metadata_events += 1
                continue
            tcm = e.get("tool_call_metadata")
            if tcm:
                rid = tcm["model_response"]["id"]
                m = group.get(rid)
                if m is None:
                    m = group[rid] = conv.assistant()
                name, cid = tcm["function_name"], tcm["tool_call_id"]
            else:
                m = conv.assistant()
                name, cid = OH_NONFC_NAMES.get(a, a), f"event-{e.get('id')}"
            if a != "think" and isinstance(args.get("thought"), str) and args["thought"]:
                m["reasoning"] += 1
            conv.call(m, cid, name)
            call_of_action[e.get("id")] = cid
        elif "observation" in e:
            o = e["observation"]
            cause = e.get("cause")
            if o in OH_BOOKKEEPING_OBS or cause not in call_of_action:
                conv.metadata_events += 1
                continue
            conv.result(call_of_action[cause], error=(o == "error" or e.get("success") is False))
        else:
            raise Reject(f"event {e.get('id')} is neither an action nor an observation")
    return conv


def read_openhands(path):
    records = []
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                records.append((n, json.loads(line)))
    else:
        with open(path, encoding="utf-8") as f:
            records.append((1, json.load(f)))
    out = []
    stem = os.path.basename(path).split(".")[0]
    for n, d in records:
        if isinstance(d, list):  # bare event list (save_trajectory_path)
            out.append((stem, read_openhands_events(d), n))
        elif "history" in d:  # evaluation output.jsonl
            conv = read_openhands_events(d["history"])
            resolved = ((d.get("test_result") or {}).get("report") or {}).get("resolved")
            conv.reward = None if resolved is None else float(bool(resolved))
            out.append((d["instance_id"], conv, n))
        elif isinstance(d.get("trajectory"), list) and d["trajectory"] and "role" in d["trajectory"][0]:
            conv = read_openai_record(d, "trajectory")  # HF dataset of runs already in chat messages
            conv.reward = float(bool(d.get("resolved")))
            out.append((d.get("trajectory_id") or d.get("instance_id"), conv, n))
        else:  # feedback wrapper
            out.append((d.get("id"), read_openhands_events(d["trajectory"]), n))
    return out


# ----------------------------------------------------------------------------- Agent Data Protocol
ADP_ACTIONS = {"api_action", "code_action", "message_action"}
ADP_OBS = {"text_observation", "image_observation", "web_observation"}


def read_adp_record(rec):
    conv = Conv()
    run = None  # assistant message of the current run of consecutive actions
    prev_cls = None
    for it in rec["content"]:
        cls = it.get("class_")
        if cls in ADP_ACTIONS:
            if run is None:
                run = conv.assistant()
            for k in ("reasoning_content", "description"):
                if isinstance(it.get(k), str) and it[k]:
                    run["reasoning"] += 1
            if cls == "api_action":
                if not isinstance(it.get("kwargs"), dict):
                    raise Reject("api_action kwargs is not a JSON object")
                conv.call(run, it.get("tool_call_id"), it.get("function"))
            elif cls == "code_action":
                conv.call(run, it.get("tool_call_id"), "code_action")
            prev_cls = cls
            continue
        if cls not in ADP_OBS:
            if has_text(it):
                raise Reject(f"content item of unknown class `{cls}` carries text")
            raise Reject(f"content item of unknown class `{cls}`")
        # An observation right after a tool action is its result whatever its `source` says: data
        # older than schema 1.3 marks such results as coming from the user.
        after_action = prev_cls in ("api_action", "code_action")
        prev_cls = cls
        run = None
        src = it.get("source")
        if cls == "web_observation" and it.get("image_observation"):
            conv.metadata_parts += 1
        if cls == "image_observation":
            conv.metadata_parts += 1
        if conv.pending and (after_action or it.get("tool_call_id") is not None or src == "environment"
                             or cls == "web_observation"):
            conv.result(it.get("tool_call_id"))
        elif src == "system":
            conv.message("system")
        elif src in ("agent", "assistant"):
            conv.assistant()
        else:
            conv.message("user")
    return conv


# ----------------------------------------------------------------------------- MCP server collections
def catalog_tools(service, domain, tools, where):
    kept, rejects = [], []
    for i, t in enumerate(tools):
        schema = t.get("input_schema", t.get("inputSchema", t.get("parameters")))
        if not isinstance(t.get("name"), str) or not t["name"]:
            rejects.append({"tool": f"{where}[{i}]", "reason": "tool has no name"})
        elif schema is not None and not isinstance(schema, dict):
            rejects.append({"tool": f"{where}[{i}]", "reason": "input schema is not a JSON object"})
        else:
            kept.append(t)
    names = [t["name"] for t in kept]
    with_out = sum(1 for t in kept if isinstance(t.get("outputSchema", t.get("output_schema")), dict))
    return {"service": service, "domain": domain, "tools": len(kept), "tool_names": names,
            "with_output_schema": with_out}, rejects


def read_mcp(path):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    services, rejects = [], []
    meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else None
    if meta and ("remote_server_response" in meta or "server_info_crawled" in meta):
        remote = (meta.get("remote_server_response") or {}).get("tools") or []
        crawled = (meta.get("server_info_crawled") or {}).get("tools") or []
        tools, where = (remote, "metadata.remote_server_response.tools") if remote else \
            (crawled, "metadata.server_info_crawled.tools")
        s, r = catalog_tools(meta.get("server_name"), (d.get("labels") or {}).get("primary_label"), tools, where)
        services.append(s)
        rejects += r
    elif "qualifiedName" in d:
        s, r = catalog_tools(d["qualifiedName"], None, d.get("tools") or [], "tools")
        services.append(s)
        rejects += r
    elif isinstance(d.get("servers"), list):
        for i, srv in enumerate(d["servers"]):
            s, r = catalog_tools(srv["name"], srv.get("category") or (srv.get("labels") or {}).get("primary_label"),
                                 srv.get("tools") or [], f"servers[{i}].tools")
            services.append(s)
            rejects += r
    else:
        raise Reject("no tool list found")
    return services, rejects


# ----------------------------------------------------------------------------- Parquet (HF datasets)
def read_parquet(path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    cols = table.column_names
    rows = table.to_pylist()
    out, rejects = [], []
    if "messages" in cols:
        mtype = str(table.schema.field("messages").type)
        extra = [c for c in cols if c not in ("id", "messages", "tools", "system")]
        for i, row in enumerate(rows):
            try:
                msgs = row["messages"]
                if isinstance(msgs, str):
                    msgs = parse_json_text(msgs, "messages column value")
                elif not isinstance(msgs, list):
                    raise Reject(f"`messages` column has type {mtype}; expected JSON text or a list of messages")
                rec = {"messages": msgs, "tools": row.get("tools")}
                first = next((m for m in msgs if isinstance(m.get("content"), list) and m["content"]), None)
                if first and isinstance(first["content"][0], dict) and "value" in first["content"][0]:
                    conv = read_llamafactory_record(rec)
                else:
                    conv = read_openai_record(rec)
                out.append(traj(row.get("id"), conv, f"row {i}"))
            except Reject as e:
                rejects.append({"row": i, "reason": str(e)})
    elif "conversations" in cols:
        extra = [c for c in cols if c not in ("conversations", "tools", "system")]
        for i, row in enumerate(rows):
            conv = Conv()
            conv.system = bool(row.get("system"))
            conv.tools = tools_count(row.get("tools"))
            for turn in row["conversations"]:
                f, v = turn["from"], turn["value"]
                if f in ("human", "user"):
                    conv.message("user")
                elif f in ("gpt", "assistant"):
                    conv.assistant()
                elif f == "function_call":
                    calls = parse_json_text(v, "function_call value")
                    calls = calls if isinstance(calls, list) else [calls]
                    last = conv.msgs[-1] if conv.msgs else None
                    m = last if last and last["role"] == "assistant" and not last["calls"] else conv.assistant()
                    for c in calls:
                        conv.call(m, None, c.get("name"))
                elif f in ("observation", "tool", "function"):
                    conv.result(None)
                elif f == "system":
                    conv.message("system")
            out.append(traj(None, conv, f"row {i}"))
    else:
        raise Reject("no `messages` or `conversations` column")
    return out, rejects, extra


# ----------------------------------------------------------------------------- driver
def jsonl_records(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, line


def per_line(path, reader, id_key="id"):
    trajs, rejects = [], []
    for n, line in jsonl_records(path):
        try:
            rec = json.loads(line)
            conv = reader(rec)
            trajs.append(traj(rec.get(id_key) if id_key else None, conv, f"line {n}"))
        except Reject as e:
            rejects.append({"line": n, "reason": str(e)})
    return trajs, rejects


def whole_file(path, reader):
    trajs, rejects = [], []
    try:
        for sid, conv in reader(path):
            trajs.append(traj(sid, conv, "file"))
    except Reject as e:
        rejects.append({"file": os.path.basename(path), "reason": str(e)})
    return trajs, rejects


def zst_text(path):
    import subprocess

    return subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout.decode("utf-8")


DIALECTS = {
    "openai_parts": lambda p: per_line(p, read_openai_record),
    "llamafactory_parts": lambda p: per_line(p, read_llamafactory_record, id_key=None),
    "anthropic": lambda p: per_line(p, read_anthropic_record),
    "openai_responses": lambda p: per_line(p, read_responses_record),
    "swe_agent": lambda p: whole_file(p, read_swe_agent),
    "claude_code": lambda p: whole_file(p, read_claude_code),
    "codex": lambda p: whole_file(p, read_codex),
}


def read_openhands_file(path):
    trajs, rejects = [], []
    try:
        for sid, conv, n in read_openhands(path):
            trajs.append(traj(sid, conv, f"line {n}" if path.endswith(".jsonl") else "file"))
    except Reject as e:
        rejects.append({"file": os.path.basename(path), "reason": str(e)})
    return trajs, rejects


def read_adp_file(path):
    if path.endswith(".jsonl"):
        return per_line(path, read_adp_record)
    trajs, rejects = [], []
    with open(path, encoding="utf-8") as f:
        for i, rec in enumerate(json.load(f)):
            try:
                trajs.append(traj(rec.get("id"), read_adp_record(rec), f"item {i}"))
            except Reject as e:
                rejects.append({"item": i, "reason": str(e)})
    return trajs, rejects


DIALECTS["openhands"] = read_openhands_file
DIALECTS["adp"] = read_adp_file


def totals(trajs):
    t = Counter()
    for x in trajs:
        t["trajectories"] += 1
        for r, n in x["messages"].items():
            t[f"messages_{r}"] += n
        for k in ("tool_calls", "tool_results", "error_results", "reasoning_parts", "metadata_parts", "metadata_events"):
            t[k] += x[k]
    return dict(t)


def entry(dialect, trajs, rejects, **extra):
    e = {"dialect": dialect, "table": "trajectories", "trajectories": trajs, "rejects": rejects, "totals": totals(trajs)}
    e.update(extra)
    return e


def main():
    files = {}
    for kind in ("formats", "bad"):
        for dialect in sorted(DIALECTS):
            folder = os.path.join(TESTDATA, kind, dialect)
            for root, _, names in sorted(os.walk(folder)):
                for name in sorted(names):
                    p = os.path.join(root, name)
                    rel = os.path.relpath(p, TESTDATA)
                    trajs, rejects = DIALECTS[dialect](p)
                    files[rel] = entry(dialect, trajs, rejects)
        folder = os.path.join(TESTDATA, kind, "mcp_collection")
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            p = os.path.join(folder, name)
            services, rejects = read_mcp(p)
            files[os.path.relpath(p, TESTDATA)] = {
                "dialect": "mcp_collection", "table": "tools", "services": services, "rejects": rejects,
                "totals": {"services": len(services), "tools": sum(s["tools"] for s in services),
                           "with_output_schema": sum(s["with_output_schema"] for s in services),
                           "rejected_tools": len(rejects)}}
        folder = os.path.join(TESTDATA, kind, "parquet")
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if not name.endswith(".parquet"):
                continue
            p = os.path.join(folder, name)
            trajs, rejects, extra = read_parquet(p)
            files[os.path.relpath(p, TESTDATA)] = entry("parquet", trajs, rejects, metadata_columns=extra)
    # compressed copies count exactly as their originals
    comp = os.path.join(TESTDATA, "formats", "compressed")
    gz = os.path.join(comp, "chat_parts.jsonl.gz")
    trajs, rejects = per_line(gz, read_openai_record)
    files[os.path.relpath(gz, TESTDATA)] = entry("openai_parts", trajs, rejects, same_as="formats/openai_parts/chat_parts.jsonl")
    for name in sorted(os.listdir(comp)):
        if name.endswith(".jsonl.zst"):
            p = os.path.join(comp, name)
            tmp = os.path.join("/tmp", name[: -len(".zst")])
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(zst_text(p))
            trajs, rejects = whole_file(tmp, read_codex)
            os.remove(tmp)
            files[os.path.relpath(p, TESTDATA)] = entry("codex", trajs, rejects, same_as="formats/codex/" + name[: -len(".zst")])
    doc = {"about": "Counts an independent reading of each fixture gives; computed by formats/expected/expected_counts.py. "
                    "Counting rules are in that script's docstring; the mapping per dialect is in its readers.",
           "files": files}
    with open(os.path.join(HERE, "EXPECTED.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{len(files)} files counted")


if __name__ == "__main__":
    sys.exit(main())
