"""The deal finder on real parts: feed files, the same feed over a loopback HTTP server, webhook receivers that count
what they get (one down, one failing twice), the real `pricer deals` command, and the 153 real offers of ../shared."""

import json
import signal
import subprocess
import time
import tracemalloc

import pytest

from conftest import PRICER, FileServer, Receiver, free_port, no_deprecated_calls, run_cli
import pricer
from pricer import PricerError
from pricer.data.items import read_items
from pricer.deals.finder import find_deals
from pricer.deals.memory import DealMemory
from pricer.deals.notify import Webhook
from pricer.deals.offers import read_offers, title_price
from pricer.deals.verdict import verdict

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Deals</title><link>https://example.com</link><description>d</description>
<item><title>Moen bathroom faucet, brushed nickel, for $49.99</title><link>https://example.com/1</link>
  <description>&lt;p&gt;A single-handle &lt;b&gt;faucet&lt;/b&gt; with a pop-up drain.&lt;/p&gt;</description></item>
<item><title>$50 off a $200 cordless drill</title><link>https://example.com/2</link><description>Drill kit</description></item>
<item><title>Dell 27-inch 4K monitor for $1,299.00 + free shipping</title><link>https://example.com/3</link>
  <description>IPS panel, USB-C hub</description></item>
<item><title>Car floor mats, all weather</title><link>https://example.com/4</link><description>No price said</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom deals</title><id>urn:x</id><updated>2026-11-27T00:00:00Z</updated>
<entry><title>Brake pads, ceramic, front set: $35</title><link href="https://example.com/a"/><id>urn:a</id>
  <updated>2026-11-27T00:00:00Z</updated><summary>Fits 2012-2018 sedans</summary></entry>
</feed>"""


@pytest.fixture(scope="module")
def model_dir(amazon, tmp_path_factory):
    path = tmp_path_factory.mktemp("deals") / "tfidf"
    items = pricer.read_items(f"{amazon / 'train.jsonl'}[:1500]", f"{amazon / 'dev.jsonl'}[:1000]")
    pricer.fit("tfidf", items).save(path)  # with its interval, calibrated out of fold
    return path


@pytest.fixture(scope="module")
def model(model_dir):
    from pricer.predictors.registry import load_predictor

    return load_predictor(model_dir)


def test_feeds_from_a_file_and_over_http_give_the_same_offers(tmp_path):
    (tmp_path / "deals.rss").write_text(RSS)
    (tmp_path / "deals.atom").write_text(ATOM)
    local = read_offers(str(tmp_path / "deals.rss"))
    assert [o.price for o in local.offers] == [49.99, 1299.0]  # "$50 off a $200" names two amounts: skipped
    assert local.no_price == 2 and local.offers[0].description == "A single-handle faucet with a pop-up drain."
    assert local.offers[1].url == "https://example.com/3"
    server = FileServer(tmp_path)
    try:
        remote = read_offers(f"{server.url}/deals.rss")
        atom = read_offers(f"{server.url}/deals.atom")
        with pytest.raises(PricerError, match=r"missing.rss: could not fetch the feed \(HTTP 404\)"):
            read_offers(f"{server.url}/missing.rss")
    finally:
        server.close()
    assert remote.offers == local.offers and remote.no_price == 2
    assert [(o.title, o.price, o.url) for o in atom.offers] == [("Brake pads, ceramic, front set: $35", 35.0, "https://example.com/a")]


def test_offer_files_and_bad_input(tmp_path):
    (tmp_path / "o.csv").write_text('title,description,price,url\nLamp,Desk lamp,"$237.68",u1\nRug,Wool rug,"$10 - $20",u2\n'
                                     'Mug,,,u3\n')
    read = read_offers(str(tmp_path / "o.csv"))
    assert [(o.title, o.price) for o in read.offers] == [("Lamp", 237.68)] and read.no_price == 2
    memory_json = [{"deal": {"product_description": "A 65 inch TV", "price": 499.0, "url": "u"}, "estimate": 700, "discount": 201}]
    (tmp_path / "memory.json").write_text(json.dumps(memory_json))  # the reference's memory.json reads as offers
    assert [(o.text, o.price) for o in read_offers(str(tmp_path / "memory.json")).offers] == [("A 65 inch TV", 499.0)]

    (tmp_path / "not-a-feed.xml").write_text("this is { not xml")
    with pytest.raises(PricerError, match="not-a-feed.xml: not an RSS or Atom feed"):
        read_offers(str(tmp_path / "not-a-feed.xml"))
    (tmp_path / "bad.jsonl").write_text('{"title": "a", "price": 3}\n{"title": oops}\n')
    with pytest.raises(PricerError, match="bad.jsonl line 2: not JSON"):
        read_offers(str(tmp_path / "bad.jsonl"))
    with pytest.raises(PricerError, match="nothing.jsonl: no such file"):
        read_offers(str(tmp_path / "nothing.jsonl"))
    assert title_price("Save $5 on a $40 lamp") is None and title_price("Lamp for $40 (was $40)") == 40.0


def test_absurd_prices_and_terminal_escapes_never_reach_a_deal(tmp_path):
    rows = [{"title": "Lamp \x1b[2J\x1b]0;owned\x07", "price": "19.99"}, {"title": "Yacht", "price": "1e308"},
            {"title": "Boat", "price": 1e308}, {"title": "Void", "price": "NaN"}, {"title": "Digits", "price": "\u0661\u0662"},
            {"title": "Underscore", "price": "1_000"}, {"title": {"nested": 1}, "description": [5, "x"], "price": 3}]
    (tmp_path / "o.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    read = read_offers(str(tmp_path / "o.jsonl"))
    assert [(o.title, o.price) for o in read.offers] == [("Lamp [2J ]0;owned", 19.99), ("5 x", 3.0)]
    assert read.no_price == 5 and all(c.isprintable() for o in read.offers for c in o.title)


def test_verdict_from_the_interval_only():
    assert verdict(100, 70, 80, 130)["verdict"] == "good deal"
    assert verdict(100, 135, 80, 130)["verdict"] == "overpriced"
    fair = verdict(100, 90, 80, 130)
    assert fair["verdict"] == "fair price" and fair["discount"] == 10 and fair["discount_percent"] == 10
    assert fair["saving"] == -10  # inside the interval: $10 above its low end
    unsure = verdict(100, 40)  # 60% below the estimate, but without an interval nothing says how sure that is
    assert unsure["verdict"] == "no verdict" and unsure["saving"] is None and "no interval" in unsure["why"]
    sure = verdict(100, 70, 80, 130, chance=0.93)
    assert sure["why"] == "$30.00 (30%) below the estimate, below its 80% range $80.00-$130.00; 93% sure it is worth more"
    assert sure["confidence"] == 0.93 and sure["saving"] == 10


def test_memory_and_a_webhook_that_is_down_then_up(model, tmp_path, amazon):
    offers = tmp_path / "offers.jsonl"
    items = read_items(f"{amazon / 'dev.jsonl'}[1200:1240]")
    offers.write_text("".join(json.dumps({"title": it.title, "description": it.text, "price": round(it.price * 0.5, 2),
                                          "url": f"https://shop.example/{n}"}) + "\n" for n, it in enumerate(items)))
    memory = DealMemory(tmp_path / "memory.sqlite")
    down = Webhook(f"http://127.0.0.1:{free_port()}/hook", attempts=2, backoff=0.01)
    said = []
    first = find_deals([str(offers)], model, 0.0, memory, down, say=said.append)
    assert first.new and first.sent == 0 and first.waiting == len(first.new)
    assert "failed 2 times" in said[0] and "stay in the memory" in said[0]

    receiver = Receiver(fail_first=2)
    try:
        second = find_deals([str(offers)], model, 0.0, memory, Webhook(receiver.url, backoff=0.01))
        third = find_deals([str(offers)], model, 0.0, memory, Webhook(receiver.url, backoff=0.01))
    finally:
        receiver.close()
    assert second.new == [] and "no new deals" in second.summary(0.0)  # already surfaced by the first scan
    assert second.sent == len(first.new) and third.sent == 0  # the waiting deals arrived once, after two failures
    assert sorted(r["url"] for r in receiver.received) == sorted(d.offer.url for d in first.new)
    assert receiver.calls == len(first.new) + 2


def test_a_slow_receiver_times_out_is_retried_and_reported():
    receiver = Receiver(delay=0.5)
    try:
        slow = Webhook(receiver.url, attempts=2, backoff=0.01, timeout=0.1)
        assert slow.send({"title": "a"}) is False and "Timeout" in slow.last_error and receiver.calls == 2
        assert Webhook(receiver.url, timeout=5).send({"title": "b"}) is True
    finally:
        receiver.close()
    with pytest.raises(PricerError, match="give an http"):
        Webhook("ftp://example.com/hook")


@pytest.mark.slow
def test_ten_thousand_offers_in_bounded_memory_with_progress(model, tmp_path):
    offers = tmp_path / "many.jsonl"
    offers.write_text("".join(json.dumps({"title": f"Cordless drill kit model {n}", "description": "18V, two batteries",
                                          "price": 20 + n % 300, "url": f"u{n}"}) + "\n" for n in range(10_000)))
    steps = []
    tracemalloc.start()
    report = find_deals([str(offers)], model, min_discount=-1e9, progress=lambda done, total: steps.append((done, total)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(report.above) == 10_000 and steps[-1] == (10_000, 10_000) and len(steps) == 40
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB of Python allocations for 10,000 offers"


@pytest.mark.slow
def test_deals_command_on_the_real_offers(model_dir, tmp_path):
    """`pricer deals` on the 153 dealnews offers: a ranked table; the second run reports none new; the webhook (which
    fails its first two calls) gets each new deal once."""
    from conftest import shared_data

    offers = str(shared_data() / "deals" / "offers.jsonl")
    receiver = Receiver(fail_first=2)
    try:
        args = ["deals", offers, "--model", model_dir, "--memory", tmp_path / "m.sqlite", "--min-discount", "20",
                "--notify", receiver.url]
        first = run_cli(*args)
        second = run_cli(*args)
        as_json = run_cli("deals", offers, "--model", model_dir, "--forget", "--json", "--min-discount", "-100000")
    finally:
        receiver.close()
    assert first.returncode == 0, first.stderr[-2000:]
    assert "148 offers from 1 source" in first.stdout and " new" in first.stdout and "good deal" in first.stdout
    assert "5 whose price is not the product's skipped" in first.stdout and "Mint Mobile" not in first.stdout
    new = int(first.stdout.split(" new")[0].rsplit("; ", 1)[1])
    assert new > 0 and len(receiver.received) == new and len({r["url"] for r in receiver.received}) == new
    assert f"{new} sent to the webhook" in first.stdout
    assert second.returncode == 0 and f"no new deals ({new} already surfaced before; --forget lists them again)" in second.stdout
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(rows) == 148 and {"title", "url", "offer", "estimate", "interval_80", "saving", "confidence"} <= set(rows[0])
    assert [r["saving"] for r in rows] == sorted((r["saving"] for r in rows), reverse=True)  # the surest saving first
    for r in rows:
        low, high = r["interval_80"]
        assert r["verdict"] == ("good deal" if r["offer"] < low else "overpriced" if r["offer"] > high else "fair price")
        assert (r["confidence"] >= 0.9) == (r["offer"] < low) or abs(r["offer"] - low) < 0.02 * low


def watch_then_interrupt(args: list, marker: str, times: int, sig=signal.SIGINT) -> tuple[int, str, list[str]]:
    """Run `pricer ARGS` until `marker` has appeared `times` times on stderr (at most 120 s), then press Ctrl-C (or
    send `sig`): its exit code, stdout and stderr lines. The process never outlives the test."""
    import threading

    proc = subprocess.Popen([*PRICER, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and sum(marker in line for line in lines) < times:
            time.sleep(0.1)
        proc.send_signal(sig)
        proc.wait(timeout=30)  # a few lines on stdout: the pipe cannot fill before it ends
        out = proc.stdout.read()
        reader.join(timeout=10)
        no_deprecated_calls("".join(lines))
        return proc.returncode, out, lines
    finally:
        proc.kill()


@pytest.mark.slow
def test_watch_repeats_until_interrupted(model_dir, tmp_path):
    (tmp_path / "deals.rss").write_text(RSS)
    code, out, lines = watch_then_interrupt(["deals", tmp_path / "deals.rss", "--model", model_dir, "--memory",
                                             tmp_path / "m.sqlite", "--watch", "0.2", "--json", "--min-discount",
                                             "-100000"], "offers from 1 source", 3)
    err = "".join(lines)
    assert code == 0, err[-2000:]
    scans = [line for line in lines if "offers from 1 source" in line]
    assert len(scans) >= 3 and "2 new" in scans[0] and "no new deals (2 already surfaced before;" in scans[1]
    assert len(out.splitlines()) == 2 and "stopped after" in err and "Traceback" not in err


@pytest.mark.slow
def test_watch_goes_on_when_a_feed_is_down_and_stops_on_sigterm(model_dir, tmp_path):
    code, _, lines = watch_then_interrupt(["deals", f"http://127.0.0.1:{free_port()}/feed.rss", "--model", model_dir,
                                           "--forget", "--watch", "0.2"], "this scan failed", 2, signal.SIGTERM)
    assert code == 0 and sum("could not fetch the feed" in line for line in lines) >= 2
    assert "stopped after 0 scans" in "".join(lines)


def _deal(n: int):
    from pricer.deals.offers import Offer
    from pricer.deals.scan import Deal

    return Deal(Offer(f"Lamp {n}", "A desk lamp", 10.0 + n, f"https://shop.example/{n}"), 40.0 + n, 30.0 + n, 60.0 + n)


def test_a_claim_left_by_a_dead_process_is_taken_over_and_a_live_one_is_not(tmp_path):
    import socket

    deals = [_deal(n) for n in range(3)]
    first = DealMemory(tmp_path / "m.sqlite")
    assert first.claim(deals, notify=True) == deals  # claimed, then the process "dies" before showing them
    other = DealMemory(tmp_path / "m.sqlite")
    other.me = "another-live-process"
    assert other.claim(deals, notify=True) == []  # the first process is still running (it is this one)
    dead = subprocess.Popen(["true"])
    dead.wait()
    with first._db() as db:
        db.execute("UPDATE deals SET owner = ?", (f"{socket.gethostname()}:{dead.pid}",))
    assert other.claim(deals, notify=True) == deals
    other.mark_shown(deals)
    assert DealMemory(tmp_path / "m.sqlite").claim(deals, notify=True) == []
    assert [key for key, _ in other.claim_waiting()] == [d.key for d in deals]
    assert first.claim_waiting() == []  # a live process is sending them


def _offers_file(tmp_path, amazon, n: int = 10):
    offers = tmp_path / "offers.jsonl"
    items = read_items(f"{amazon / 'dev.jsonl'}[:{n}]")
    offers.write_text("".join(json.dumps({"title": it.title, "description": it.text, "price": round(it.price * 0.3, 2),
                                          "url": f"https://shop.example/{k}"}) + "\n" for k, it in enumerate(items)))
    return offers


def _printed_urls(stdout: str) -> list[str]:
    return [json.loads(line)["url"] for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_two_finders_at_once_show_and_send_each_deal_once(model_dir, tmp_path, amazon):
    offers = _offers_file(tmp_path, amazon)
    receiver = Receiver(delay=0.05)
    try:
        args = [*PRICER, "deals", offers, "--model", model_dir, "--memory", tmp_path / "m.sqlite", "--json",
                "--min-discount", "-100000", "--notify", receiver.url]
        procs = [subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        receiver.close()
    assert all(p.returncode == 0 for p in procs), outs[0][1][-2000:] + outs[1][1][-2000:]
    printed = _printed_urls(outs[0][0]) + _printed_urls(outs[1][0])
    assert sorted(printed) == sorted(f"https://shop.example/{k}" for k in range(10))
    assert sorted(r["url"] for r in receiver.received) == sorted(printed)
    assert len(set(receiver.keys)) == 10 and None not in receiver.keys


@pytest.mark.slow
def test_a_finder_killed_while_sending_loses_nothing_and_repeats_only_with_the_same_key(model_dir, tmp_path, amazon):
    offers = _offers_file(tmp_path, amazon)
    receiver = Receiver(delay=1.0)
    try:
        args = list(map(str, [*PRICER, "deals", offers, "--model", model_dir, "--memory", tmp_path / "m.sqlite",
                              "--json", "--min-discount", "-100000", "--notify", receiver.url]))
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + 120
        while receiver.calls < 3 and time.time() < deadline:
            time.sleep(0.05)
        proc.kill()  # SIGKILL, in the middle of a send
        first_out = proc.communicate(timeout=30)[0]
        receiver.delay = 0.0
        second = subprocess.run(args, capture_output=True, text=True, timeout=300)
        time.sleep(1.5)  # the send cut short may still land at the receiver
    finally:
        receiver.close()
    assert second.returncode == 0, second.stderr[-2000:]
    printed = _printed_urls(first_out) + _printed_urls(second.stdout)
    assert sorted(printed) == sorted(f"https://shop.example/{k}" for k in range(10))  # each shown once
    by_url = {}
    for body, key in zip(receiver.received, receiver.keys):
        by_url.setdefault(body["url"], set()).add(key)
    assert sorted(by_url) == sorted(printed) and all(len(keys) == 1 for keys in by_url.values())


def test_offers_whose_price_is_not_the_products_are_skipped_with_their_reason():
    from conftest import shared_data
    from pricer.deals.offers import not_a_price

    read = read_offers(str(shared_data() / "deals" / "offers.jsonl"))  # the 153 real dealnews offers
    assert read.not_a_price == {"a phone plan": 1, "a subscription": 1, "a discount, not a price": 3}
    assert len(read.offers) == 148 and not any("Mint Mobile" in o.title for o in read.offers)  # "$1" with a plan
    assert not any(o.price in (80, 350, 500) and "Samsung" in o.title for o in read.offers)  # "$350 off" at $350
    assert not_a_price("AirPods Pro 2 with a new line", "", 189) == "a phone plan"
    assert not_a_price("Galaxy S25 for $299.99 with trade-in", "", 299.99) == "a trade-in price"
    assert not_a_price("$25 Amazon eGift Card", "", 25) == "a gift card"
    assert not_a_price("Cordless drill for $89 ($40 off)", "https://shop.example/drill-40-off", 89) is None


def test_min_discount_in_dollars_or_a_percent_of_the_low_end():
    from pricer.deals.offers import Offer
    from pricer.deals.scan import Deal, Threshold

    deal = _deal(0)  # offer $10, estimate $40, interval $30-$60: $20 (66.7% of the low end) below the interval
    assert [Threshold.of(v).met_by(deal) for v in ("20", "$20", 20.01, "66%", "67%", "-5")] == \
        [True, True, False, True, False, True]
    assert not Threshold.of("-1000").met_by(Deal(Offer("Lamp", "", 10.0), 40.0))  # no interval: never a deal
    assert str(Threshold.of("30%")) == "30% of the interval's low end" and str(Threshold.of("1,000")) == "$1,000.00"
    for bad in ("thirty", "30%%", "nan", ""):
        with pytest.raises(PricerError, match="--min-discount"):
            Threshold.of(bad)
