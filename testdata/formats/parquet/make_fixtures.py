"""Writes the small Parquet fixtures in this folder (and one bad file under testdata/bad/parquet/).

They imitate how Hugging Face datasets of agent trajectories are laid out: a `messages` column holding
JSON text, a native list<struct<...>> `messages` column, a ShareGPT `conversations` column, LLaMA-Factory
v1 messages with typed parts, a `tools` column holding JSON text, and extra columns that must end up in
`metadata`. Content is made up for the tests. Run with `python3 make_fixtures.py` (needs pyarrow); the
outputs are committed, so the script only needs re-running when the fixtures change.
"""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "..", "..", "bad", "parquet")


def js(value):
    return json.dumps(value, ensure_ascii=False)


def write(table, name, folder=HERE, row_group_size=2):
    os.makedirs(folder, exist_ok=True)
    # Fixed settings so the bytes only change when the content does.
    pq.write_table(table, os.path.join(folder, name), row_group_size=row_group_size,
                   compression="zstd", write_statistics=False)


def fn_tool(name, description, props, required):
    return {"type": "function", "function": {"name": name, "description": description,
            "parameters": {"type": "object", "properties": props, "required": required}}}


LIB_TOOLS = [
    fn_tool("search_catalog", "Search the library catalogue.", {"query": {"type": "string"}}, ["query"]),
    fn_tool("hold_book", "Place a hold on a book for a patron.", {"isbn": {"type": "string"}, "patron": {"type": "string"}}, ["isbn", "patron"]),
]


def call(cid, name, args):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": js(args)}}


# ---------------------------------------------------------------- 1. messages as JSON text
rows_json = [
    {"id": "lib-001", "difficulty": 1, "split": "train", "messages": [
        {"role": "system", "content": "You help library patrons."},
        {"role": "user", "content": "Is 'The Salt Road' available?"},
        {"role": "assistant", "content": None, "tool_calls": [call("c1", "search_catalog", {"query": "The Salt Road"})]},
        {"role": "tool", "tool_call_id": "c1", "content": js([{"isbn": "978-0-00-000001-1", "copies_free": 0}])},
        {"role": "assistant", "content": "All copies are out. Shall I place a hold?"}]},
    {"id": "lib-002", "difficulty": 2, "split": "train", "messages": [
        {"role": "user", "content": "Hold 'Night Trains' for patron P-77."},
        {"role": "assistant", "content": None, "reasoning_content": "Find the ISBN, then place the hold.",
         "tool_calls": [call("c2", "search_catalog", {"query": "Night Trains"})]},
        {"role": "tool", "tool_call_id": "c2", "content": js([{"isbn": "978-0-00-000002-8", "copies_free": 1}])},
        {"role": "assistant", "content": None, "tool_calls": [call("c3", "hold_book", {"isbn": "978-0-00-000002-8", "patron": "P-77"})]},
        {"role": "tool", "tool_call_id": "c3", "content": js({"hold": "H-5521", "pickup_by": "2025-06-02"})},
        {"role": "assistant", "content": "Hold H-5521 is placed; pick it up by 2 June."}]},
    {"id": "lib-003", "difficulty": 1, "split": "test", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "What are the opening hours on Sunday?"}]},
        {"role": "assistant", "content": "The library is closed on Sundays."}]},
    {"id": "lib-004", "difficulty": 3, "split": "test", "messages": [
        {"role": "user", "content": "Find books by the author of 'Night Trains' and hold the newest for P-12."},
        {"role": "assistant", "content": None, "tool_calls": [
            call("c4", "search_catalog", {"query": "author:Vera Lund"}),
            call("c5", "search_catalog", {"query": "Night Trains"})]},
        {"role": "tool", "tool_call_id": "c4", "content": js([{"isbn": "978-0-00-000003-5", "year": 2021}, {"isbn": "978-0-00-000004-2", "year": 2024}])},
        {"role": "tool", "tool_call_id": "c5", "content": js([{"isbn": "978-0-00-000002-8", "author": "Vera Lund"}])},
        {"role": "assistant", "content": None, "tool_calls": [call("c6", "hold_book", {"isbn": "978-0-00-000004-2", "patron": "P-12"})]},
        {"role": "tool", "tool_call_id": "c6", "content": "error: patron P-12 has reached the hold limit"},
        {"role": "assistant", "content": "P-12 already has the maximum number of holds, so I could not place it."}]},
]
table = pa.table({
    "id": pa.array([r["id"] for r in rows_json], pa.string()),
    "messages": pa.array([js(r["messages"]) for r in rows_json], pa.string()),
    "tools": pa.array([js(LIB_TOOLS)] * len(rows_json), pa.string()),
    "split": pa.array([r["split"] for r in rows_json], pa.string()),
    "difficulty": pa.array([r["difficulty"] for r in rows_json], pa.int32()),
})
write(table, "messages_json_string.parquet")

# ---------------------------------------------------------------- 2. messages as native nested columns
fn_type = pa.struct([("name", pa.string()), ("arguments", pa.string())])
call_type = pa.struct([("id", pa.string()), ("type", pa.string()), ("function", fn_type)])
msg_type = pa.struct([("role", pa.string()), ("content", pa.string()), ("reasoning_content", pa.string()),
                      ("tool_calls", pa.list_(call_type)), ("tool_call_id", pa.string()), ("name", pa.string())])


def m(role, content=None, reasoning=None, calls=None, tool_call_id=None, name=None):
    return {"role": role, "content": content, "reasoning_content": reasoning, "tool_calls": calls,
            "tool_call_id": tool_call_id, "name": name}


rows_nested = [
    ("nest-a", 0.9, [m("user", "Convert 5 miles to km."),
                     m("assistant", None, "Use the length converter.", [call("n1", "convert_length", {"value": 5, "from": "mi", "to": "km"})]),
                     m("tool", js({"value": 8.047, "unit": "km"}), tool_call_id="n1", name="convert_length"),
                     m("assistant", "5 miles is about 8.05 km.")]),
    ("nest-b", 0.4, [m("system", "Answer briefly."),
                     m("user", "Weight of 3 litres of water?"),
                     m("assistant", "About 3 kg.")]),
    ("nest-c", 0.7, [m("user", "Convert 10 and 20 feet to metres."),
                     m("assistant", None, None, [call("n2", "convert_length", {"value": 10, "from": "ft", "to": "m"}),
                                                 call("n3", "convert_length", {"value": 20, "from": "ft", "to": "m"})]),
                     m("tool", js({"value": 3.048, "unit": "m"}), tool_call_id="n2", name="convert_length"),
                     m("tool", js({"value": 6.096, "unit": "m"}), tool_call_id="n3", name="convert_length"),
                     m("assistant", "10 ft is 3.05 m and 20 ft is 6.10 m.")]),
]
CONV_TOOLS = [fn_tool("convert_length", "Convert a length between units.",
                      {"value": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}}, ["value", "from", "to"])]
table = pa.table({
    "id": pa.array([r[0] for r in rows_nested], pa.string()),
    "messages": pa.array([r[2] for r in rows_nested], pa.list_(msg_type)),
    "tools": pa.array([js(CONV_TOOLS)] * len(rows_nested), pa.string()),
    "quality": pa.array([r[1] for r in rows_nested], pa.float64()),
})
write(table, "messages_nested.parquet")

# ---------------------------------------------------------------- 3. ShareGPT conversations column
turn_type = pa.struct([("from", pa.string()), ("value", pa.string())])
PARK_TOOLS = [{"name": "find_parking", "description": "Free parking spots near an address.",
               "parameters": {"type": "object", "properties": {"address": {"type": "string"}}, "required": ["address"]}}]
rows_sg = [
    ([{"from": "human", "value": "Any free parking near 4 Dock Street?"},
      {"from": "function_call", "value": js({"name": "find_parking", "arguments": {"address": "4 Dock Street"}})},
      {"from": "observation", "value": js({"spots": 3, "nearest_m": 120})},
      {"from": "gpt", "value": "Yes, 3 spots; the nearest is 120 m away."}], "You help drivers in the city.", ["img/dock-st.jpg"]),
    ([{"from": "human", "value": "Thanks! How about near the station?"},
      {"from": "gpt", "value": "Which station do you mean, central or east?"}], "You help drivers in the city.", []),
    ([{"from": "human", "value": "Spots near 9 Mill Lane and 2 Quay Road?"},
      {"from": "function_call", "value": js([{"name": "find_parking", "arguments": {"address": "9 Mill Lane"}},
                                             {"name": "find_parking", "arguments": {"address": "2 Quay Road"}}])},
      {"from": "observation", "value": js({"spots": 0})},
      {"from": "observation", "value": js({"spots": 5, "nearest_m": 40})},
      {"from": "gpt", "value": "None at Mill Lane; Quay Road has 5, the nearest 40 m away."}], None, []),
]
table = pa.table({
    "conversations": pa.array([r[0] for r in rows_sg], pa.list_(turn_type)),
    "system": pa.array([r[1] for r in rows_sg], pa.string()),
    "tools": pa.array([js(PARK_TOOLS)] * len(rows_sg), pa.string()),
    "images": pa.array([r[2] for r in rows_sg], pa.list_(pa.string())),
})
write(table, "conversations_sharegpt.parquet")

# ---------------------------------------------------------------- 4. LLaMA-Factory v1 typed parts, nested
part_type = pa.struct([("type", pa.string()), ("value", pa.string())])
lf_msg_type = pa.struct([("role", pa.string()), ("content", pa.list_(part_type)), ("loss_weight", pa.float32())])


def lf(role, parts, weight):
    return {"role": role, "content": [{"type": t, "value": v} for t, v in parts], "loss_weight": weight}


rows_lf = [
    [lf("user", [("text", "Plant 3 tulip bulbs and 2 crocus bulbs: how deep?")], 0.0),
     lf("assistant", [("reasoning", "Tulips go about three bulb-heights deep, crocus a bit shallower."),
                      ("text", "Tulips about 15 cm deep, crocus about 8 cm.")], 1.0)],
    [lf("user", [("image_url", "img/leaf-spots.jpg"), ("text", "What is wrong with this leaf?")], 0.0),
     lf("assistant", [("tool_call", js({"name": "diagnose_leaf", "arguments": {"image": "img/leaf-spots.jpg"}}))], 1.0),
     lf("tool", [("text", js({"label": "powdery mildew", "confidence": 0.81}))], 0.0),
     lf("assistant", [("text", "It looks like powdery mildew; remove the worst leaves and improve airflow.")], 1.0)],
]
LEAF_TOOLS = [fn_tool("diagnose_leaf", "Classify a leaf disease from a photo.", {"image": {"type": "string"}}, ["image"])]
table = pa.table({
    "messages": pa.array(rows_lf, pa.list_(lf_msg_type)),
    "tools": pa.array(["", js(LEAF_TOOLS)], pa.string()),
    "_dataset_name": pa.array(["garden_help", "garden_help"], pa.string()),
})
write(table, "llamafactory_parts_nested.parquet")

# ---------------------------------------------------------------- bad: `messages` of the wrong type
table = pa.table({"id": pa.array(["w-1", "w-2"], pa.string()), "messages": pa.array([3, 5], pa.int64())})
write(table, "messages_wrong_type.parquet", folder=BAD)
print("parquet fixtures written")
