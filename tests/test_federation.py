"""Federation with real processes: nodes A and B on one local mixnet; people registered at
one of them reach people at the other directly through the mixnet, anonymously (never
through their own node, never signing at the other)."""

import os

from nodeclient import Client, run

from nymchat.client.nodelink import NodeLink
from nymchat.protocol import pow
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import Kind


def test_one_nym_client_signs_at_home_and_looks_up_anonymously_at_a_foreign_node(
    start_mixnet, start_node
):
    mixnet = start_mixnet()
    a, b = start_node(mixnet, name="node-a"), start_node(mixnet, name="node-b")

    async def main():
        async with Client(f"{mixnet.url}/bob", b.contact) as bob:
            assert (await bob.register("bob")).kind is Kind.REGISTERED
            async with Client(f"{mixnet.url}/alice", a.contact) as alice:
                assert (await alice.register("alice")).kind is Kind.REGISTERED
                foreign = NodeLink(
                    alice.transport,
                    NodeContact.parse(b.contact),
                    alice.identity,
                    reader=alice.link.reader,
                    anonymous_only=True,
                )
                async with foreign:
                    found = await foreign.request(
                        Kind.LOOKUP, timeout=5, username="bob", proof_of_work=0
                    )
                    while found.kind is Kind.POW_REQUIRED:
                        request_id = os.urandom(16)
                        nonce = pow.solve(
                            pow.lookup(foreign.contact.key, request_id, "bob"),
                            found.body["difficulty"],
                        )
                        found = await foreign.request(
                            Kind.LOOKUP,
                            timeout=5,
                            request_id=request_id,
                            username="bob",
                            proof_of_work=nonce,
                        )
                    assert found.kind is Kind.BUNDLE
                    assert found.body["identity"] == bob.identity.signing_public
                    # Signed requests still go home, answered on the same nym-client.
                    refreshed = await alice.request(Kind.REFRESH)
                    assert refreshed.kind is Kind.REFRESHED
                    assert foreign.frontends.record()["home"] is None
                    assert foreign.frontends.descriptor is not None  # fetched anonymously

    run(main(), timeout=120)
