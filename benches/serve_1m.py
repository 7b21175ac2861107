#!/usr/bin/env python3
"""How fast `tdscale serve` answers on a large generated corpus.

Generates N trajectories (`tdscale gen`, default 1,000,000), starts `tdscale serve` (the release
build, or the binary given with --bin), and measures:
- the start: time until the server listens, until the trajectory index is in memory, and the
  server's memory then;
- for each filter of the trajectory browser, the first page through the API and in the browser
  (headless Chromium: from navigation to the rows on screen), and the count apart;
- the overview's report, and one trajectory's chat view.

Medians of --repeats runs. Prints a Markdown table, and appends it to benches/RESULTS.md with
--append. The corpus is deleted at the end unless --keep.

    python3 benches/serve_1m.py [--trajectories 1000000] [--repeats 5] [--bin PATH] [--append] [--keep]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def get(base, path):
    t = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=600) as r:
        body = json.loads(r.read())
    return body, time.perf_counter() - t


def chromium_version():
    try:
        return subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.split(" built")[0].strip()
    except OSError:
        return "Chromium"


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trajectories", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tdscale-serve-bench"))
    ap.add_argument("--bin", help="a tdscale binary (default: build the release one)")
    ap.add_argument("--append", action="store_true", help="append the table to benches/RESULTS.md")
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus")
    args = ap.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/tdscale-target"))
    binary = args.bin
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": target})
        binary = os.path.join(target, "release", "tdscale")
    corpus = os.path.join(args.work, "corpus")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    t = time.perf_counter()
    subprocess.run([binary, "gen", corpus, "--trajectories", str(args.trajectories), "--seed", "1", "--json"],
                   check=True, stdout=subprocess.DEVNULL)
    gen_s = time.perf_counter() - t

    started = time.perf_counter()
    # The filters that read every trajectory's messages may pass the default 30 s limit on a slow
    # build; the benchmark measures them rather than their refusal.
    server = subprocess.Popen([binary, "serve", corpus, "--bind", "127.0.0.1:0", "--query-timeout", "600s"],
                              stdout=subprocess.PIPE, text=True)
    rows = []
    try:
        line = server.stdout.readline()
        listening_s = time.perf_counter() - started
        base = "http://" + line.split("http://")[1].split("/")[0]
        # The first page while the index is still being built (it reads the files).
        _, live_s = get(base, "/api/trajectories?domain=retail")
        while not get(base, "/api/status")[0]["index"]["materialized"]:
            time.sleep(0.05)
        ready_s = time.perf_counter() - started
        status = get(base, "/api/status")[0]["index"]
        index_rss = rss_mib(server.pid)

        facets, facets_s = get(base, "/api/facets")
        modes = facets["mode"]
        rare_mode = modes[len(modes) // 2]["v"]
        filters = [
            ("domain", {"domain": "retail"}),
            ("round", {"round": "0"}),
            ("mode (a mid-frequency one)", {"mode": rare_mode}),
            ("CAC range", {"cac_min": "20", "cac_max": "25"}),
            ("domain + mode + CAC", {"domain": "airline", "mode": modes[0]["v"], "cac_min": "5"}),
            ("SQL WHERE on listed columns", {"where": "num_tool_calls > 8 AND domain <> 'airline'"}),
            ("sorted by CAC, descending", {"sort": "cac", "desc": "1", "domain": "banking"}),
            ("SQL WHERE on messages (reads the files)", {"where": "cardinality(messages) > 12"}),
            ("free text (reads the files)", {"q": "refund"}),
        ]
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="tdscale-chromium-") as profile:
            ctx = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium",
                                                       headless=True, args=FLAGS)
            page = ctx.new_page()
            page.goto(base + "/trajectories")  # load the script and facets once
            page.wait_for_selector("body[data-ready]", timeout=600000)
            for name, f in filters:
                q = urllib.parse.urlencode(f)
                api_times, count_times, browser_times = [], [], []
                n = None
                for _ in range(args.repeats):
                    body, s = get(base, "/api/trajectories?" + q)
                    api_times.append(s)
                    c, s = get(base, "/api/trajectories/count?" + q)
                    count_times.append(s)
                    n = c["count"]
                    t = time.perf_counter()
                    page.goto(base + "/trajectories?" + q)
                    page.wait_for_selector("tbody tr, p.empty, .error", timeout=600000)
                    browser_times.append(time.perf_counter() - t)
                rows.append((name, q, n, statistics.median(api_times), statistics.median(browser_times),
                             statistics.median(count_times)))
            ctx.close()

        _, report_s = get(base, "/api/report?by=domain")
        _, report_cached_s = get(base, "/api/report?by=domain")
        one = get(base, "/api/trajectories?domain=retail&per_page=1")[0]["rows"][0]["traj_id"]
        chat = statistics.median(get(base, "/api/trajectory?" + urllib.parse.urlencode({"id": one}))[1]
                                 for _ in range(args.repeats))
        final_rss = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait()
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)

    ms = lambda s: f"{s * 1000:,.0f} ms"
    out = []
    out.append(f"## `tdscale serve` on {args.trajectories:,} generated trajectories ({time.strftime('%Y-%m-%d')})\n")
    build = ("release build" if os.sep + "release" + os.sep in binary else
             "debug build (`--bin` a test build: tdscale at opt-level 0, its dependencies at opt-level 1)")
    out.append(f"`python3 benches/serve_1m.py --trajectories {args.trajectories} --repeats {args.repeats}`: {build}, "
               f"{os.cpu_count()} cores, headless {chromium_version()}. Medians of {args.repeats} runs; the browser time is "
               "from navigation to the rows on screen (page, script, the API call and drawing), with the facets of the "
               "filter form cached by the server; the server ran with `--query-timeout 600s`.\n")
    out.append(f"Start: `tdscale gen` took {gen_s:.1f} s. The server listened after {ms(listening_s)}; the trajectory "
               f"index ({status['rows']:,} rows) was in memory after {ready_s:.1f} s (built in {status['build_ms'] / 1000:.1f} s), "
               f"the server then using {index_rss:,} MiB ({final_rss:,} MiB at the end). Before the index was ready, the first "
               f"page filtered by domain took {ms(live_s)} (read from the files, while the index was being built). The facets "
               f"of the filter form took {ms(facets_s)} once.\n")
    out.append("| filter | query string | matches | first page, API | first page, browser | count |")
    out.append("|---|---|---|---|---|---|")
    for name, q, n, api_s, browser_s, count_s in rows:
        out.append(f"| {name} | `{q}` | {n:,} | {ms(api_s)} | {ms(browser_s)} | {ms(count_s)} |")
    out.append("")
    out.append(f"The overview's report by domain: {ms(report_s)} the first time, {ms(report_cached_s)} cached. One "
               f"trajectory's chat view (lookup by id, decode, calls, dependencies, moves, lineage): {ms(chat)}.\n")
    text = "\n".join(out)
    print(text)
    if args.append:
        with open(os.path.join(REPO, "benches", "RESULTS.md"), "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    sys.exit(main())
