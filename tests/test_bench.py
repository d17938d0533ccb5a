"""scripts/bench.py gives its figures on a fast machine as on a slow one, and stops what it
started however it ends."""

import asyncio
import importlib.util
import os
import subprocess

import pytest
from procs import ROOT

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_relay_node_queues_every_message_of_the_bench_unacknowledged(
    bench, start_mixnet, start_node
):
    """The fastest machine: every sealed send arrives before the recipient acknowledges
    any."""
    from nodeclient import Anonymous, Client

    from nymchat.protocol.wire import Kind, access_verifier

    messages = 1200  # more than a recipient's default quota (1,000)
    mixnet = start_mixnet()
    node = start_node(mixnet, *bench.relay_node_args(messages))

    async def send_all() -> None:
        async with (
            Anonymous(f"{mixnet.url}/alice", node.contact) as alice,
            Client(f"{mixnet.url}/bob", node.contact) as bob,
        ):
            await bob.register("bob")  # and never acknowledges
            key = os.urandom(32)
            await bob.request(Kind.SET_ACCESS, access_verifier=access_verifier(key), strangers=16)
            window = asyncio.Semaphore(200)

            async def send(n: int) -> None:
                async with window:
                    answer = await alice.seal("bob", bytes(100), key, n.to_bytes(16, "big"))
                    assert answer.kind is Kind.ACCEPTED, answer

            await asyncio.gather(*(send(n) for n in range(messages)))

    asyncio.run(send_all())  # a refusal (queue_full) raises


def test_a_failed_bench_leaves_no_process_running(bench, monkeypatch):
    started = []
    popen = subprocess.Popen

    def recording(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    async def fails(*args, **kwargs):
        raise RuntimeError("the measurement failed")

    monkeypatch.setattr(subprocess, "Popen", recording)
    monkeypatch.setattr(bench, "relay", fails)
    with pytest.raises(RuntimeError, match="the measurement failed"):
        bench.node_suite()
    assert len(started) == 2  # the mixnet and the node
    assert all(proc.poll() is not None for proc in started)


NODE_KEYS = {
    "sealed_relay_msgs_per_s",
    "node_cpu_us_per_msg",
    "lookup_p50_ms",
    "lookup_p99_ms",
    "rss_mb",
    "relay_pg_msgs_per_s",
    "node_cpu_pg_us_per_msg",
    "postgres_cpu_us_per_msg",
    "relay_two_processes_pg_msgs_per_s",
    "lookup_pg_p50_ms",
    "lookup_pg_p99_ms",
}


def test_the_node_suite_measures_every_figure_it_reports_on_both_stores(
    bench, monkeypatch, postgres
):
    """A small run of `node` (counts cut down) on the test PostgreSQL: every key the issue
    names, SQLite's and PostgreSQL's (one node process and two), measured, and the table
    renders from them."""
    monkeypatch.setenv("NYMCHAT_TEST_POSTGRES", postgres)
    monkeypatch.setattr(bench, "NODE_RELAY_MESSAGES", 200)
    monkeypatch.setattr(bench, "NODE_USERS", 1000)
    monkeypatch.setattr(bench, "NODE_QUEUED", 100)
    monkeypatch.setattr(bench, "NODE_LOOKUPS", 20)
    results = bench.node_suite()
    # CPU time is read in clock ticks (10 ms): a run this small may cost the server less
    cpu = {key for key in NODE_KEYS if "cpu" in key}
    measured = {key: results[key] >= 0 if key in cpu else results[key] > 0 for key in NODE_KEYS}
    assert measured == dict.fromkeys(NODE_KEYS, True)
    table = bench.node_markdown(results)
    assert f"| PostgreSQL: lookup p99 | {results['lookup_pg_p99_ms']:.3f} ms |" in table
    assert "| PostgreSQL: relayed (sealed) messages/s |" in table


def test_the_groups_suite_measures_every_figure_it_reports(bench, monkeypatch):
    """A small run of `groups` (sizes and counts cut down): every key the issue names,
    and the table renders from them."""
    import bench_groups

    monkeypatch.setattr(bench_groups, "SIZES", (2, 3))
    monkeypatch.setattr(bench_groups, "MESSAGES", 2)
    monkeypatch.setattr(bench_groups, "ADD_ROUNDS", 1)
    monkeypatch.setattr(bench_groups, "SEND_ROUNDS", 1)
    monkeypatch.setattr(bench_groups, "SEND_PER_ROUND", 2)
    results = bench.groups_suite()
    assert set(results["group_send_cpu_ms"]) == {"2", "3"}
    assert set(results["group_all_received_p50_ms"]) == {"2", "3"}
    assert results["fanout_deliveries_per_s"] > 0 and results["add_member_1000_ms"] > 0
    assert "deliveries/s" in bench.groups_markdown(results)


E2E_KEYS = {
    "p50_ms",
    "p99_ms",
    "msgs_per_s",
    "direct_p50_ms",
    "direct_p99_ms",
    "federated_p50_ms",
    "federated_p99_ms",
    "oneshot_lookup_s",
    "oneshot_send_s",
    "chat_rss_mb",
}


def test_the_e2e_suite_measures_every_figure_it_reports_across_nodes_too(bench, monkeypatch):
    """A small run of `e2e` (counts cut down): same-node, direct and cross-node latencies
    (alice at one node, bob at another) and the rest measured, and the table renders them
    with the cross-node target (within 2 ms of the same-node p50)."""
    monkeypatch.setattr(bench, "E2E_LATENCY_MESSAGES", 5)
    monkeypatch.setattr(bench, "E2E_THROUGHPUT_MESSAGES", 5)
    monkeypatch.setattr(bench, "ONESHOT_RUNS", 1)
    results = bench.e2e_suite()
    assert {key: results[key] > 0 for key in E2E_KEYS} == dict.fromkeys(E2E_KEYS, True)
    table = bench.e2e_markdown(results)
    target = f"≤ {results['p50_ms'] + 2:.2f} ms (same-node p50 + 2 ms)"
    assert f"| across nodes, send→receive p50 | {results['federated_p50_ms']} ms | {target} |" in (
        table
    )
