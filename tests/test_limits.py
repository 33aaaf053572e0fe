import asyncio
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import pytest

from zbot.config import parse_windows
from zbot.core.jobs import NewJob, QueueFull, RateLimited, Refused, TooManyPending
from zbot.core.limits import Policy, admit, quota
from zbot.core.store import Store

JOB = NewJob(user_id=1, prompt="a fox", seed=1, size="square", width=64, height=64, steps=8)


def policy(windows="5/minute", pending=100, queue=1000) -> Policy:
    return Policy(parse_windows(windows), pending, queue)


async def try_admit(store, pol, user_id=1, now=None, exempt=False):
    try:
        return await admit(store, pol, replace(JOB, user_id=user_id), now=now or time.time(), exempt=exempt)
    except Refused as refusal:
        return refusal


async def test_twenty_concurrent_requests_against_five_per_minute_admit_exactly_five(store: Store):
    outcomes = await asyncio.gather(*(try_admit(store, policy()) for _ in range(20)))
    admitted = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(admitted) == 5 and len(refused) == 15
    rows = await store.query("SELECT status, count(*) FROM generations GROUP BY status")
    assert dict(rows) == {"queued": 5}  # refusals are counted, not kept as rows
    counted = await store.query("SELECT user_id, reason, sum(count) FROM refusals GROUP BY 1, 2")
    assert [tuple(r) for r in counted] == [(1, "rate_limited", 15)]


async def test_two_connections_to_one_file_share_the_limit(settings):
    first, second = await Store.open(settings.database), await Store.open(settings.database)
    try:
        outcomes = await asyncio.gather(*(try_admit(s, policy()) for s in [first, second] * 10))
        assert sum(isinstance(o, int) for o in outcomes) == 5
    finally:
        await first.close()
        await second.close()


async def test_refusal_names_the_window_and_when_to_retry(store: Store):
    start = 1_000_000.0
    for i in range(5):
        assert isinstance(await try_admit(store, policy("5/minute,100/day"), now=start + i), int)
    refusal = await try_admit(store, policy("5/minute,100/day"), now=start + 10)
    assert isinstance(refusal, RateLimited)
    assert "5 images per minute" in refusal.message
    assert refusal.retry_at.timestamp() == pytest.approx(start + 60)
    assert "Try again" in refusal.sentence()
    # Once the oldest image leaves the window, one more fits.
    assert isinstance(await try_admit(store, policy(), now=start + 60.5), int)


async def test_daily_window_is_checked_too(store: Store):
    start = 2_000_000.0
    for i in range(3):
        await try_admit(store, policy("10/minute,3/day"), now=start + i * 100)
    refusal = await try_admit(store, policy("10/minute,3/day"), now=start + 1000)
    assert isinstance(refusal, RateLimited) and "3 images per day" in refusal.message
    assert refusal.retry_at.timestamp() == pytest.approx(start + 86400)


async def test_admins_are_exempt(store: Store):
    outcomes = [await try_admit(store, policy("1/minute", pending=1), exempt=True) for _ in range(4)]
    assert all(isinstance(o, int) for o in outcomes)


async def test_failed_renders_do_not_count(store: Store):
    first = await try_admit(store, policy("1/minute"))
    assert isinstance(await try_admit(store, policy("1/minute")), RateLimited)
    await store.update(first, status="failed", error="the GPU ran out of memory")
    assert isinstance(await try_admit(store, policy("1/minute")), int)


async def test_pending_jobs_per_user_are_bounded(store: Store):
    pol = policy("100/minute", pending=2)
    assert isinstance(await try_admit(store, pol), int)
    assert isinstance(await try_admit(store, pol), int)
    refusal = await try_admit(store, pol)
    assert isinstance(refusal, TooManyPending) and "2 requests in the queue" in refusal.message
    assert isinstance(await try_admit(store, pol, user_id=2), int)  # others are not affected


async def test_the_whole_queue_is_bounded_for_everyone(store: Store):
    pol = policy("100/minute", queue=3)
    for user in range(3):
        assert isinstance(await try_admit(store, pol, user_id=user), int)
    refusal = await try_admit(store, pol, user_id=99, exempt=True)
    assert isinstance(refusal, QueueFull) and refusal.retry_at is not None


async def test_quota_reports_what_is_left(store: Store):
    now = time.time()
    for _ in range(3):
        await try_admit(store, policy("5/minute,100/day"), now=now)
    q = await quota(store, policy("5/minute,100/day"), 1, now=now + 1)
    assert [(w.used, w.remaining) for w in q.windows] == [(3, 2), (3, 97)]
    assert q.pending == 3


async def test_limits_survive_a_restart_in_another_process(settings):
    script = textwrap.dedent(f"""
        import asyncio, time
        from zbot.config import parse_windows
        from zbot.core.jobs import NewJob
        from zbot.core.limits import Policy, admit
        from zbot.core.store import Store
        async def main():
            store = await Store.open({str(settings.database)!r})
            for _ in range(5):
                await admit(store, Policy(parse_windows("5/minute"), 100, 1000),
                            NewJob(user_id=1, prompt="p", seed=1, size="square", width=64, height=64, steps=8),
                            now=time.time())
            await store.close()
        asyncio.run(main())
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    store = await Store.open(settings.database)
    try:
        assert isinstance(await try_admit(store, policy()), RateLimited)
    finally:
        await store.close()


def test_the_most_generous_role_tier_applies():
    from zbot.core.limits import pick_tier

    default = parse_windows("5/minute,100/day")
    tiers = {10: parse_windows("20/minute,500/day"), 20: parse_windows("60/minute,200/day"),
             30: parse_windows("1/second")}
    assert pick_tier([], tiers, default) == (None, default)
    assert pick_tier([99], tiers, default) == (None, default)
    assert pick_tier([10, 20], tiers, default)[0] == 10  # 500 a day beats 200 a day
    assert pick_tier([10, 20, 30], tiers, default)[0] == 30  # 86400 a day


def test_role_tiers_are_read_from_json(monkeypatch):
    from zbot.config import Settings, SettingsError, load_settings

    monkeypatch.setenv("ZBOT_ROLE_RATE_LIMITS", '{"123": "20/minute,500/day"}')
    assert Settings(_env_file=None).role_rate_limits == {123: parse_windows("20/minute,500/day")}
    monkeypatch.setenv("ZBOT_ROLE_RATE_LIMITS", '{"123": "lots"}')
    with pytest.raises(SettingsError, match="ZBOT_ROLE_RATE_LIMITS"):
        load_settings(_env_file=None)
