"""The node's directory of other nodes (`nymchat node --directory FILE`): the file is read
at start, a bad line refusing the start with its number; the node answers an anonymous
`directory` request with the list signed for itself, which a client checks entry by entry;
a node with no directory says so."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_node_service import T0, Harness

from nymchat import _native
from nymchat.node.directory import RESIGN_MS, DirectoryError, NodeDirectory, load, parse
from nymchat.nym.address import Address as NymAddress
from nymchat.protocol import wire
from nymchat.protocol.contact import NodeContact
from nymchat.protocol.wire import ErrorCode, Kind


def contact(key: bytes | None = None) -> str:
    nym = NymAddress(
        _native.Identity.generate().signing_public,
        os.urandom(32),
        _native.Identity.generate().signing_public,
    )
    return str(NodeContact(key or _native.Identity.generate().signing_public, (nym,)))


WORK, PLAY = contact(), contact()


def test_a_directory_file_lists_petnames_and_contact_strings_with_comments():
    text = f"# nodes we trust\n\nWork {WORK}  # the office\n   play\t{PLAY}\n"
    assert parse(text) == (wire.DirectoryEntry("work", WORK), wire.DirectoryEntry("play", PLAY))


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("work", "petname contact-string"),
        (f"work {WORK} extra", "petname contact-string"),
        (f"w! {WORK}", "petname"),
        ("work nymchat-node:nope:", "node"),
        (f"play {WORK}", "listed already"),
        (f"work {PLAY}", "listed already"),
    ],
)
def test_a_bad_line_is_refused_with_its_number(line, why):
    with pytest.raises(DirectoryError, match=f"nodes.txt, line 3: .*{why}"):
        parse(f"# first\nwork {WORK}\n{line}\n", "nodes.txt")


def test_a_directory_lists_at_most_256_nodes_and_its_file_is_bounded(tmp_path):
    many = "".join(f"node{n} {contact()}\n" for n in range(wire.MAX_DIRECTORY + 1))
    with pytest.raises(DirectoryError, match="line 257: a directory lists at most 256"):
        parse(many)
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"#" * (1 << 20))
    with pytest.raises(DirectoryError, match="is over"):
        load(huge)
    with pytest.raises(DirectoryError, match="cannot read"):
        load(tmp_path / "missing.txt")


def test_the_node_answers_an_anonymous_directory_request_with_its_signed_list():
    h = Harness()
    refused = h.anonymous(os.urandom(18), Kind.DIRECTORY)
    assert refused.body["code"] == ErrorCode.NOT_FOUND
    h.service.directory = NodeDirectory(h.node, parse(f"work {WORK}\nplay {PLAY}\n"))
    answer = h.anonymous(os.urandom(18), Kind.DIRECTORY)
    assert answer.kind is Kind.DIRECTORY_IS
    listed = wire.decode_directory(answer.body["directory"], h.key, T0)
    assert listed.node == h.node.signing_public and (listed.issued, listed.expires) == (
        T0,
        T0 + 86_400_000,
    )
    assert [(e.petname, e.contact) for e in listed.entries] == [("work", WORK), ("play", PLAY)]


def test_the_signed_list_is_signed_again_when_an_hour_old_and_expires():
    node = _native.Identity.generate()
    directory = NodeDirectory(node, parse(f"work {WORK}\n"))
    first = directory.signed(T0)
    assert directory.signed(T0 + RESIGN_MS - 1) is first
    again = directory.signed(T0 + RESIGN_MS)
    key = _native.PublicKey(node.signing_public)
    assert wire.decode_directory(again, key, T0 + RESIGN_MS).issued == T0 + RESIGN_MS
    with pytest.raises(wire.WireError, match="not current"):
        wire.decode_directory(first, key, T0 + 86_400_000)


def _signed(node, entries, issued=T0, of=None) -> bytes:
    record = wire.Directory(of or node.signing_public, issued, issued + 1000, tuple(entries))
    return wire.encode_directory(node, record)


def test_a_client_refuses_a_list_signed_by_another_node_or_with_a_bad_entry():
    node, other = _native.Identity.generate(), _native.Identity.generate()
    key = _native.PublicKey(node.signing_public)
    entries = [wire.DirectoryEntry("work", WORK)]
    with pytest.raises(wire.WireError, match="not signed by the node"):
        wire.decode_directory(_signed(other, entries), key, T0)
    with pytest.raises(wire.WireError, match="another node's"):
        wire.decode_directory(_signed(node, entries, of=other.signing_public), key, T0)
    for bad in (
        [wire.DirectoryEntry("Work", WORK)],
        [wire.DirectoryEntry("w!", WORK)],
        [wire.DirectoryEntry("work", "nymchat-node:x:")],
        [wire.DirectoryEntry("work", WORK), wire.DirectoryEntry("work", PLAY)],
    ):
        with pytest.raises(wire.WireError):
            wire.decode_directory(_signed(node, bad), key, T0)


NODE = _native.Identity.generate()


@given(st.binary(max_size=400))
def test_any_signed_bytes_decode_to_a_checked_directory_or_are_refused(record):
    signed = bytes((wire.DIRECTORY_VERSION,)) + record
    data = signed + NODE.sign(wire.DIRECTORY_LABEL, signed)
    try:
        listed = wire.decode_directory(data, _native.PublicKey(NODE.signing_public), T0)
    except wire.WireError:
        return
    assert listed.node == NODE.signing_public
