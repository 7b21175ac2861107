#!/usr/bin/env python3
"""Drives every page of `tdscale serve` in headless Chromium (Debian's package, through Playwright).

Run by the integration test `serve::every_page_in_a_real_browser`, which builds the corpus,
starts the server and writes what the pages must show (computed apart, with `tdscale sql`) to a
JSON file:

    python3 tests/browser/serve_pages.py --url http://127.0.0.1:PORT --expect expect.json --out DIR

Each check prints a line; the first failing check stops the run with exit status 1. A screenshot
of every page is written to DIR. Nothing is downloaded: the browser is /usr/bin/chromium, started
with networking features off and a fresh profile.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import urllib.parse

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    sys.exit("error: the Python package playwright is missing: pip install playwright "
             "(only the package: the browser is Debian's chromium)")

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

checks = 0


PAGE = None


def check(ok, what):
    global checks
    if not ok:
        print(f"FAILED: {what}", flush=True)
        if PAGE is not None:
            print(f"  at {PAGE.url}\n  page text: {PAGE.inner_text('body')[:2000]!r}", flush=True)
        raise SystemExit(1)
    checks += 1
    print(f"ok {checks}: {what}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--expect", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    exp = json.load(open(args.expect))
    os.makedirs(args.out, exist_ok=True)
    if not os.path.exists(CHROMIUM):
        sys.exit(f"error: {CHROMIUM} is missing: apt-get install -y chromium")
    base = args.url.rstrip("/")

    # The fresh profile is removed afterwards, whatever the outcome.
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="tdscale-chromium-") as profile:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = ctx.new_page()
        global PAGE
        PAGE = page
        problems = []

        def on_console(m):
            # The pages provoke 400 (bad SQL, bad filters) and 403 (refused statements) on
            # purpose; the browser logs each. Anything else — a CSP violation, a missing
            # asset, a script error — is a problem.
            if m.type not in ("error", "warning"):
                return
            if "Failed to load resource: the server responded with a status of 40" in m.text and (
                    "status of 400" in m.text or "status of 403" in m.text):
                return
            problems.append(f"console {m.type}: {m.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

        def wait_for_count():
            # The total is counted apart; wait until it is a number. (Not wait_for_function: the
            # page's Content-Security-Policy forbids the eval it polls with.)
            expect(page.locator("#count")).to_have_text(re.compile(r"^[0-9,]+$"), timeout=60000)

        def goto(path):
            page.goto(base + path)
            page.wait_for_selector("body[data-ready]", timeout=60000)

        def shot(name):
            page.wait_for_timeout(200)
            page.screenshot(path=os.path.join(args.out, f"{name}.png"), full_page=True)

        def no_script_ran(where):
            pwned = page.evaluate("() => [window.__pwned, document.title]")
            check(pwned[0] is None, f"{where}: no script from the corpus ran (window.__pwned is unset)")
            scripts = page.evaluate("() => Array.from(document.scripts).map(s => s.getAttribute('src'))")
            check(scripts == ["/assets/app.js"], f"{where}: the only script is the app's ({scripts})")
            imgs = page.evaluate("() => document.querySelectorAll('img, iframe, object, embed').length")
            check(imgs == 0, f"{where}: no img, iframe, object or embed element was made from corpus text")
            handlers = page.evaluate(
                "() => Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => /^on/i.test(a.name))).length")
            check(handlers == 0, f"{where}: no element carries an event-handler attribute")

        # ---- Overview ----
        goto("/")
        page.wait_for_selector("figure svg .mark", timeout=60000)
        rows = page.locator("#tables table.grid tbody tr")
        names = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
        check("trajectories" in names and "synthesis_rejects" in names, f"overview lists the tables ({names})")
        traj_row = rows.nth(names.index("trajectories")).locator("td")
        check(traj_row.nth(3).inner_text().replace(",", "") == str(exp["trajectories"]),
              f"overview: trajectories has {exp['trajectories']} rows")
        # "Look for new data" lists the tables again and reloads the page (nothing new here).
        with page.expect_navigation(timeout=60000):
            page.click("#refresh")
        page.wait_for_selector("body[data-ready]", timeout=60000)
        page.wait_for_selector("#tables table.grid tbody tr", timeout=60000)
        again = page.locator("#tables table.grid tbody tr").count()
        check(again == rows.count() and again == len(names),
              f"after 'Look for new data' the overview lists the same {len(names)} tables")
        page.wait_for_selector("figure svg .mark", timeout=60000)
        charts = page.locator("figure svg").count()
        check(charts == 4, f"overview shows the four report charts ({charts})")
        bar = page.locator("figure svg rect.mark[data-filter='round=1']")
        check(bar.count() == 1, "the trajectories-by-round chart has a bar for round 1")
        bar.hover()
        page.wait_for_selector("#tooltip:not([hidden])", timeout=5000)
        tip = page.inner_text("#tooltip")
        check(tip.startswith("1: ") and "DE" in tip, f"hovering the bar shows its numbers ({tip!r})")
        shot("overview")
        bar.click()
        page.wait_for_url(lambda u: u.endswith("/trajectories?round=1"), timeout=10000)
        page.wait_for_selector("body[data-ready]")
        wait_for_count()
        check(page.inner_text("#count").replace(",", "") == str(exp["round1"]),
              f"clicking the round-1 bar lists the {exp['round1']} trajectories of round 1")
        # A mode of the report table leads to that mode's trajectories.
        goto("/?by=domain")
        page.wait_for_selector("table.grid a .chip")
        no_script_ran("the report by domain (a hostile domain label among the groups)")
        chip = page.locator("table.grid a:has(.chip)").first
        mode_href = chip.get_attribute("href")
        chip.click()
        page.wait_for_url(lambda u: "mode=" in u)
        page.wait_for_selector("body[data-ready]")
        q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
        check("mode" in q, f"clicking a mode in the report filters by it ({mode_href})")
        modes = page.locator("tbody tr td:nth-child(6)").all_inner_texts()
        check(modes and all(m == q["mode"][0] for m in modes), f"every listed trajectory has mode {q['mode'][0]}")

        # ---- Trajectory browser: pick a filter in the form ----
        goto("/trajectories")
        page.wait_for_selector("select[name=domain] option:nth-child(2)", state="attached", timeout=30000)
        page.select_option("select[name=domain]", exp["domain"])
        page.fill("input[name=cac_min]", str(exp["cac_min"]))
        page.click("form.filters button[type=submit]")
        page.wait_for_url(lambda u: "domain=" in u, timeout=10000)
        page.wait_for_selector("body[data-ready]")
        wait_for_count()
        check(page.inner_text("#count").replace(",", "") == str(exp["domain_cac_count"]),
              f"domain {exp['domain']} with CAC ≥ {exp['cac_min']}: {exp['domain_cac_count']} trajectories")
        domains = page.locator("tbody tr td:nth-child(4)").all_inner_texts()
        check(len(domains) == min(50, exp["domain_cac_count"]) and set(domains) == {exp["domain"]},
              f"the first page shows {len(domains)} rows, all of domain {exp['domain']}")
        cacs = [float(x.replace(",", "")) for x in page.locator("tbody tr td:nth-child(7)").all_inner_texts()]
        check(all(c >= exp["cac_min"] - 0.005 for c in cacs), "every listed CAC is at least the minimum")
        shot("trajectories")
        # Page 2 continues where page 1 stopped.
        if exp["domain_cac_count"] > 50:
            first_ids = page.locator("tbody tr td:nth-child(1) > a").all_inner_texts()
            page.click("a[rel=next]")
            page.wait_for_url(lambda u: "page=2" in u)
            page.wait_for_selector("body[data-ready]")
            page.wait_for_selector("tbody tr")
            next_ids = page.locator("tbody tr td:nth-child(1) > a").all_inner_texts()
            check(next_ids and not set(next_ids) & set(first_ids) and min(next_ids) > max(first_ids),
                  "the next page continues the order without repeating a row")
        # A SQL WHERE that needs the files (metadata) and one that is wrong.
        goto("/trajectories?" + urllib.parse.urlencode({"where": exp["where"]}))
        wait_for_count()
        check(page.inner_text("#count").replace(",", "") == str(exp["where_count"]),
              f"WHERE {exp['where']}: {exp['where_count']} trajectories")
        goto("/trajectories?where=no_such_column%20%3E%201")
        err = page.locator(".error").first.inner_text()
        check("no_such_column" in err, f"a wrong WHERE shows the error ({err[:60]!r}…)")
        # Free text finds the hostile trajectory.
        goto("/trajectories?" + urllib.parse.urlencode({"q": "window.__pwned"}))
        page.wait_for_selector("tbody tr")
        ids = page.locator("tbody tr td:nth-child(1) > a").all_inner_texts()
        check(exp["hostile_id"] in ids, "free text finds the hostile trajectory, its id shown as text")
        no_script_ran("the list of hostile trajectories")
        shot("trajectories-hostile")

        # ---- One trajectory: open it from the list ----
        t = exp["trajectory"]
        goto("/trajectories?" + urllib.parse.urlencode({"q": t["id"]}))
        page.locator("tbody tr td:nth-child(1) > a", has_text=t["id"]).first.click()
        page.wait_for_url(lambda u: "/trajectory?id=" in u)
        page.wait_for_selector("body[data-ready]")
        cards = page.locator("#x-chat .call")
        check(cards.count() == len(t["calls"]), f"{t['id']}: {len(t['calls'])} calls shown")
        for i, c in enumerate(t["calls"]):
            card = page.locator(f"#x-c{i}")
            check(card.locator(".name").inner_text() == c["name"], f"call {i} is {c['name']}")
            args_text = card.locator(".args").inner_text()
            check(json.loads(args_text) == json.loads(c["arguments"]), f"call {i} shows its arguments, pretty-printed")
            if c["result"] is None:
                check(card.locator(".result").count() == 0, f"call {i} has no result")
            else:
                res = card.locator(".result pre").inner_text()
                check(res == c["result"], f"call {i} shows its result")
                is_err = card.locator(".result.err").count() == 1
                check(is_err == c["is_error"], f"call {i} error flag is {c['is_error']}")
            step = card.locator(".head .badge", has_text="c(a_t)").inner_text()
            check(abs(float(step.split("=")[1]) - c["step"]) < 0.006, f"call {i} shows c(a_t) = {c['step']:.2f}")
        arrows = page.locator("#x-chat svg.arrows path.dep-arrow").count()
        check(arrows == t["arrows"], f"{t['arrows']} arrows from results to the arguments that use them")
        served = page.request.get(base + "/api/trajectory?" + urllib.parse.urlencode({"id": t["id"]})).json()
        first_move = served["trajectory"]["moves"][0]
        mv = page.locator(".mode button.move").first
        check(mv.inner_text() == first_move["move"], f"the mode string starts with {first_move['move']}")
        mv.click()
        check(page.locator("#x-chat .hl").count() == len(first_move["messages"]),
              f"clicking move {first_move['move']} highlights its {len(first_move['messages'])} messages")
        shot("trajectory")

        # ---- A synthesized trajectory beside its seed ----
        goto("/trajectory?" + urllib.parse.urlencode({"id": exp["evolved_id"]}))
        page.wait_for_selector(".lineage")
        seed_link = page.locator(".lineage dd a").first
        check(seed_link.inner_text() == exp["evolved_parent"], "the lineage names the seed")
        check(page.locator(".columns.two .chat").count() == 2, "the seed is shown side by side")
        check("blueprint" in page.inner_text(".lineage"), "the lineage shows the blueprint")
        shot("trajectory-evolved")

        # ---- The hostile trajectory: everything is text ----
        goto("/trajectory?" + urllib.parse.urlencode({"id": exp["hostile_id"]}))
        page.wait_for_selector("#x-chat .msg")
        text = page.inner_text("main")
        for s in exp["hostile_texts"]:
            check(s in text, f"the hostile text is shown literally: {s[:50]!r}")
        no_script_ran("the hostile trajectory")
        shot("trajectory-hostile")

        # ---- Rounds ----
        goto("/rounds")
        page.wait_for_selector("table.grid")
        rounds = page.locator("table.grid").first.locator("tbody tr").count()
        check(rounds == exp["rounds"], f"rounds lists {exp['rounds']} rounds")
        check(page.locator("figure svg").count() == 3, "rounds shows its three charts")
        reasons = page.locator("table.grid").last.locator("tbody tr td:nth-child(3)").all_inner_texts()
        check(set(exp["reason_kinds"]) <= set(reasons), f"the rejection reasons are listed ({reasons})")
        shot("rounds")
        views = page.get_by_role("link", name="view", exact=True).count()
        check((views > 0) == (exp["rejected_with_trajectory"] > 0),
              f"'view' links exactly when a rejection kept its trajectory ({views})")
        first = exp["first_rejection"]
        goto("/rejected?" + urllib.parse.urlencode({"batch": first["batch_id"], "seed": first["seed_id"]}))
        page.wait_for_selector("body[data-ready]")
        check(page.locator("ul.reasons li").count() >= 1, "a rejected example shows why it was rejected")
        if exp["rejected_with_trajectory"] > 0:
            check(page.locator(".chat").count() == 2, "and its conversation beside its seed")
        else:
            check(page.locator(".chat").count() == 1 and page.get_by_text("The request failed before a trajectory was made.").count() == 1,
                  "and its seed, with the request that failed before a trajectory was made")
        shot("rejected")

        # ---- Clusters ----
        goto("/clusters")
        page.wait_for_selector("table.grid")
        check(page.locator("table.grid tbody tr").count() == exp["clusters"], f"clusters lists {exp['clusters']} clusters")
        shot("clusters")
        page.get_by_role("link", name=exp["cluster_id"], exact=True).first.click()
        page.wait_for_url(lambda u: "/clusters?id=" in u)
        page.wait_for_selector("body[data-ready]")
        tools = page.locator("table.grid").first.locator("tbody tr").count()
        check(tools == exp["cluster_tools"], f"{exp['cluster_id']} shows its {exp['cluster_tools']} tools")
        edges = page.locator("table.grid").last.locator("tbody tr td:nth-child(3)").all_inner_texts()
        check(exp["cluster_edge_field"] in edges, f"and its edge via {exp['cluster_edge_field']}")
        check(page.locator("svg.graph line").count() == len(edges), "the graph draws every edge")
        shot("cluster")

        # ---- SQL console ----
        goto("/sql")
        page.fill("textarea[name=sql]", exp["good_sql"])
        page.click("#run")
        page.wait_for_selector("#sql-info")
        cells = page.locator("#result tbody tr td").all_inner_texts()
        check(cells == exp["good_rows"], f"good SQL shows its rows ({cells})")
        with page.expect_download() as d:
            page.click("#download-csv")
        csv_text = open(d.value.path()).read()
        check(csv_text.splitlines()[1:] == [",".join(r) for r in exp["good_csv"]], "the CSV download has the rows")
        with page.expect_download() as d:
            page.click("#download-parquet")
        check(open(d.value.path(), "rb").read(4) == b"PAR1", "the Parquet download is a Parquet file")
        shot("sql")
        for bad, expected in exp["bad_sql"]:
            page.fill("textarea[name=sql]", bad)
            page.click("#run")
            page.wait_for_selector("#result .error")
            err = page.inner_text("#result .error")
            check(expected.lower() in err.lower(), f"{bad[:40]!r} is refused or fails with {expected!r}")
        shot("sql-error")
        page.fill("textarea[name=sql]", exp["good_sql"])
        page.click("#run")
        page.wait_for_selector("#sql-info")
        check(page.locator("#result tbody tr td").all_inner_texts() == exp["good_rows"], "the server still answers after the errors")

        check(not problems, f"no console error, CSP violation or page error ({problems[:5]})")
        ctx.close()
    print(f"{checks} passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # a Playwright timeout or a wrong selector: say where
        print(f"FAILED after {checks} checks: {type(e).__name__}: {e}", flush=True)
        if PAGE is not None:
            print(f"  at {PAGE.url}\n  page text: {PAGE.inner_text('body')[:2000]!r}", flush=True)
        raise SystemExit(1)
