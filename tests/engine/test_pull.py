"""PULL and PULLB (PROTOCOL §2.3): order, limits, TTL, groups, blocking waiters."""

from __future__ import annotations

from tests.engine.helpers import T0, Harness


def test_pull_order_priority_then_run_at_then_id(h: Harness) -> None:
    low = h.push(priority=1)
    high = h.push(priority=5)
    low2 = h.push(priority=1)
    assert [h.pull_id() for _ in range(3)] == [high, low, low2]
    assert h.pull_id() is None


def test_lifo_takes_newest_first_within_a_priority(h: Harness) -> None:
    a = h.push(lifo=True)
    b = h.push(lifo=True)
    assert [h.pull_id(), h.pull_id()] == [b, a]


def test_earlier_run_at_first_within_a_priority(h: Harness) -> None:
    later = h.push(delay=200)
    sooner = h.push(delay=100)
    h.advance(300)
    assert [h.pull_id(), h.pull_id()] == [sooner, later]


def test_delayed_high_priority_job_does_not_hide_ready_jobs(h: Harness) -> None:
    # §6.6 fix: upstream only looked at the top of the heap.
    h.push(priority=100, delay=10_000)
    ready = h.push(priority=1)
    assert h.pull_id() == ready


def test_delivery_marks_the_job_active(h: Harness) -> None:
    job_id = h.push()
    h.advance(5)
    job = h.pull()
    assert job is not None
    assert job["started_at"] == job["last_heartbeat"] == T0 + 5
    assert job["attempts"] == 0
    assert h.state(job_id) == "active"


def test_expired_ttl_jobs_are_dropped_at_selection(h: Harness) -> None:
    stale = h.push(ttl=100)
    fresh = h.push()
    h.advance(101)
    assert h.pull_id() == fresh
    assert h.state(stale) == "unknown"
    assert h.counts()["waiting"] == 0


def test_paused_queue_delivers_nothing_until_resumed(h: Harness) -> None:
    job_id = h.push()
    h("PAUSE", queue="q")
    assert h.pull_id() is None
    token = h.block("PULL", queue="q", timeout=1000)
    h("RESUME", queue="q")
    assert h.resolved[token]["job"]["id"] == job_id


def test_concurrency_limit_caps_active_jobs(h: Harness) -> None:
    h("SETCONCURRENCY", queue="q", limit=2)
    ids = [h.push() for _ in range(4)]
    got = h("PULLB", queue="q", count=10, timeout=0)["jobs"]
    assert [j["id"] for j in got] == ids[:2]
    assert h.pull_id() is None
    h("ACK", id=ids[0])
    assert h.pull_id() == ids[2]
    h("CLEARCONCURRENCY", queue="q")
    assert h.pull_id() == ids[3]


def test_rate_limit_applies_to_pull_and_pullb(h: Harness) -> None:
    # bucket: capacity 2, refill 2 tokens/s
    h("RATELIMIT", queue="q", limit=2)
    for _ in range(6):
        h.push()
    assert len(h("PULLB", queue="q", count=10, timeout=0)["jobs"]) == 2
    assert h.pull_id() is None
    h.advance(500)  # one token back
    assert len(h("PULLB", queue="q", count=10, timeout=0)["jobs"]) == 1
    h.advance(1000)  # two more
    assert h.pull_id() is not None
    assert h.pull_id() is not None
    assert h.pull_id() is None
    h("RATELIMITCLEAR", queue="q")
    assert h.pull_id() is not None


def test_rate_limit_zero_blocks_everything(h: Harness) -> None:
    h("RATELIMIT", queue="q", limit=0)
    h.push()
    h.advance(10_000)
    assert h.pull_id() is None


def test_one_active_job_per_group(h: Harness) -> None:
    g1a = h.push(group_id="g1")
    g1b = h.push(group_id="g1")
    g2 = h.push(group_id="g2")
    free = h.push()
    jobs = h("PULLB", queue="q", count=10, timeout=0)["jobs"]
    assert [j["id"] for j in jobs] == [g1a, g2, free]  # at most one per group
    assert h.pull_id() is None
    h("ACK", id=g1a)
    assert h.pull_id() == g1b


def test_group_released_on_cancel_fail_and_movetodelayed(h: Harness) -> None:
    # §6.6 fix: upstream kept the group blocked after CANCEL/DISCARD/MOVETODELAYED/timeout.
    a = h.push(group_id="g")
    b = h.push(group_id="g")
    c = h.push(group_id="g")
    assert h.pull_id() == a
    h("CANCEL", id=a)
    assert h.pull_id() == b
    h("MOVETODELAYED", id=b, delay=1000)
    assert h.pull_id() == c
    h("DISCARD", id=c)
    h.advance(1000)
    assert h.pull_id() == b


def test_parked_group_job_survives_when_its_ready_sibling_is_cancelled(h: Harness) -> None:
    a = h.push(group_id="g")
    b = h.push(group_id="g")
    c = h.push(group_id="g")
    assert h.pull_id() == a
    assert h.pull_id() is None  # b parked (c is still in the ready heap or parked too)
    h("ACK", id=a)
    h("CANCEL", id=b)
    assert h.pull_id() == c


def test_group_job_priority_change_while_parked(h: Harness) -> None:
    a = h.push(group_id="g")
    b = h.push(group_id="g")
    c = h.push(group_id="g")
    assert h.pull_id() == a
    assert h.pull_id() is None  # parks b and c
    h("CHANGEPRIORITY", id=c, priority=9)
    h("ACK", id=a)
    assert h.pull_id() == c
    h("ACK", id=c)
    assert h.pull_id() == b


def test_pull_blocks_and_is_woken_by_a_push(h: Harness) -> None:
    token = h.block("PULL", queue="q", timeout=5000)
    assert token not in h.resolved
    job_id = h.push()
    assert h.resolved[token]["job"]["id"] == job_id
    assert h.state(job_id) == "active"


def test_pull_timeout_replies_null(h: Harness) -> None:
    token = h.block("PULL", queue="q", timeout=5000)
    h.advance(4999)
    assert token not in h.resolved
    h.advance(1)
    assert h.resolved[token] == {"ok": True, "job": None}


def test_pullb_timeout_replies_empty_list_and_count_zero_waits(h: Harness) -> None:
    h.push()
    token = h.block("PULLB", queue="q", count=0, timeout=300)
    assert token not in h.resolved  # count=0 waits the whole timeout...
    h.advance(300)
    assert h.resolved[token] == {"ok": True, "jobs": []}  # ...and gets nothing
    assert h.counts()["waiting"] == 1


def test_pullb_returns_as_soon_as_one_job_is_there(h: Harness) -> None:
    token = h.block("PULLB", queue="q", count=10, timeout=5000)
    ids = h("PUSHB", queue="q", jobs=[{"data": 1}, {"data": 2}])["ids"]
    # the batch is pushed in one command, so the waiter sees both jobs
    assert [j["id"] for j in h.resolved[token]["jobs"]] == ids


def test_waiters_are_served_fifo(h: Harness) -> None:
    first = h.block("PULL", queue="q", timeout=5000)
    second = h.block("PULL", queue="q", timeout=5000)
    a = h.push()
    assert h.resolved[first]["job"]["id"] == a
    assert second not in h.resolved
    b = h.push()
    assert h.resolved[second]["job"]["id"] == b


def test_delayed_job_wakes_a_waiter_on_the_wakeup_tick(h: Harness) -> None:
    job_id = h.push(delay=250)
    token = h.block("PULL", queue="q", timeout=5000)
    assert h.engine.next_deadline() == T0 + 250
    h.now += 250
    h.tick("wakeup")
    assert h.resolved[token]["job"]["id"] == job_id
    assert h.engine.next_deadline() is None


def test_rate_limited_waiter_deadline_is_the_next_token(h: Harness) -> None:
    h("RATELIMIT", queue="q", limit=4)  # a token every 250 ms
    for _ in range(5):
        h.push()
    h("PULLB", queue="q", count=4, timeout=0)
    token = h.block("PULL", queue="q", timeout=10_000)
    assert h.engine.next_deadline() == T0 + 250
    h.now += 250
    h.tick("wakeup")
    assert h.resolved[token]["job"] is not None


def test_ack_frees_a_slot_for_a_blocked_puller(h: Harness) -> None:
    h("SETCONCURRENCY", queue="q", limit=1)
    a, b = h.push(), h.push()
    assert h.pull_id() == a
    token = h.block("PULL", queue="q", timeout=5000)
    h("ACK", id=a)
    assert h.resolved[token]["job"]["id"] == b


def test_cancel_conn_drops_its_waiters(h: Harness) -> None:
    mine = h.block("PULL", queue="q", timeout=5000, conn=7)
    other = h.block("PULL", queue="q", timeout=5000, conn=8)
    waiting = h.block("WAITJOB", id=h.push("elsewhere"), timeout=5000, conn=7)
    h.engine.cancel_conn(7)
    job_id = h.push()
    assert h.resolved[other]["job"]["id"] == job_id
    h.advance(5000)
    assert mine not in h.resolved
    assert waiting not in h.resolved


def test_requeue_puts_an_undelivered_job_back_in_place(h: Harness) -> None:
    a, b = h.push(), h.push()
    assert h.pull_id() == a
    h.engine.requeue([a], h.now)
    h.drain()
    assert h.state(a) == "waiting"
    job = h.pull()
    assert job is not None
    assert job["id"] == a
    assert job["attempts"] == 0
    assert h.pull_id() == b


def test_pull_on_unknown_queue_waits_then_times_out(h: Harness) -> None:
    token = h.block("PULL", queue="nothing-here", timeout=100)
    h.advance(100)
    assert h.resolved[token] == {"ok": True, "job": None}
    h.tick("cleanup")
    assert h.engine.statistics().queues == 0


def test_expire_waiters_also_serves_what_became_due(h: Harness) -> None:
    job_id = h.push(delay=100)
    token = h.block("PULL", queue="q", timeout=100)
    h.advance(100)  # the job is due exactly at the waiter's deadline: the job wins
    assert h.resolved[token]["job"]["id"] == job_id


def test_next_deadline_never_stays_in_the_past(h: Harness) -> None:
    h("PAUSE", queue="q")
    h.push(delay=100)
    h.block("PULL", queue="q", timeout=10_000)
    assert h.engine.next_deadline() == T0 + 100
    h.advance(100)
    # the job is due but the queue is paused: only the waiter's own deadline remains
    assert h.engine.next_deadline() == T0 + 10_000


def test_expired_group_job_does_not_strand_its_parked_siblings(h: Harness) -> None:
    a = h.push(group_id="g")
    b = h.push(group_id="g", ttl=50)
    c = h.push(group_id="g")
    assert h.pull_id() == a
    assert h.pull_id() is None  # b and c parked
    h("ACK", id=a)  # b comes back to the ready heap, c stays parked
    h.advance(51)
    assert h.pull_id() == c  # b expired on the way; c must not stay parked
    assert h.state(b) == "unknown"
