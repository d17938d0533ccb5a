//! The RFC 9420 interoperability vectors of mlswg/mls-implementations (`test-vectors/`,
//! the files mls-rs keeps in its `test_data/`) that a nymchat member can go through:
//! passive client welcome, handling commit and random, cipher suite 1 only, in
//! `rust_ext/tests/vectors/mls/` (the random file cut to its first 16 epochs), and the
//! first cases of the serialization vectors (`messages.json`).
//!
//! Each case joins from its Welcome with the given key package secrets and processes the
//! given proposals and commits through `MlsGroup` (our client configuration, rules,
//! crypto, storage, and a state round trip after every epoch), comparing epoch
//! authenticators. What differs from a real member: the vectors' credentials are basic
//! ones of no nymchat identity, so `NymchatIdentities` is swapped for mls-rs's
//! `BasicIdentityProvider`; their commits take in other members' proposals by reference,
//! which nymchat's rules refuse, so the rules let them; and their external PSKs and
//! out-of-band ratchet trees (which nymchat never uses) are given as the vectors say.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use mls_rs::group::ExportedTree;
use mls_rs::identity::basic::BasicIdentityProvider;
use mls_rs::psk::{ExternalPskId, PreSharedKey};
use mls_rs::storage_provider::in_memory::InMemoryKeyPackageStorage;
use mls_rs::{Client, MlsMessage};
use mls_rs_codec::MlsEncode;
use mls_rs_core::crypto::{HpkeSecretKey, SignatureSecretKey};
use mls_rs_core::key_package::KeyPackageData;
use serde_json::Value;

use super::rules::Rules;
use super::storage::{GroupSnapshot, GroupStorage, decode};
use super::{Config, MlsGroup, MlsMember, ProcessedKind, suite};

type Basic = BasicIdentityProvider;

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/vectors/mls/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(!cases.is_empty(), "{path} has no cases");
    cases
}

fn bytes(value: &Value, key: &str) -> Vec<u8> {
    hex::decode(value[key].as_str().unwrap_or_else(|| panic!("no {key}"))).unwrap()
}

/// The passive client of `case`, holding its key package's secrets.
fn member(case: &Value) -> MlsMember<Basic> {
    let key_package = MlsMessage::from_bytes(&bytes(case, "key_package"))
        .unwrap()
        .into_key_package()
        .unwrap();
    let reference = key_package.to_reference(&suite().unwrap()).unwrap();
    let data = KeyPackageData::new(
        key_package.mls_encode_to_vec().unwrap(),
        HpkeSecretKey::from(bytes(case, "init_priv")),
        HpkeSecretKey::from(bytes(case, "encryption_priv")),
        key_package.expiration().unwrap().seconds_since_epoch(),
    );
    let key_packages = InMemoryKeyPackageStorage::new();
    key_packages.insert(reference.to_vec(), data);
    MlsMember {
        signer: SignatureSecretKey::from(bytes(case, "signature_priv")),
        signing_identity: key_package.signing_identity().clone(),
        key_packages,
        identities: BasicIdentityProvider::new(),
    }
}

/// The member's client with the case's external PSKs.
fn client(member: &MlsMember<Basic>, case: &Value, storage: GroupStorage) -> Client<Config<Basic>> {
    let psks = case["external_psks"].as_array().unwrap();
    let rules = Rules {
        any_by_reference: true,
    };
    psks.iter()
        .fold(member.builder(storage).mls_rules(rules), |builder, psk| {
            builder.psk(
                ExternalPskId::new(bytes(psk, "psk_id")),
                PreSharedKey::new(bytes(psk, "psk")),
            )
        })
        .build()
}

/// `MlsMember::join`, with the case's PSKs and out-of-band tree.
fn join(member: &MlsMember<Basic>, case: &Value) -> MlsGroup<Basic> {
    let storage = GroupStorage::default();
    let tree = case["ratchet_tree"]
        .as_str()
        .map(|tree| hex::decode(tree).unwrap());
    let tree = tree
        .as_deref()
        .map(|tree| ExportedTree::from_bytes(tree).unwrap());
    let welcome = MlsMessage::from_bytes(&bytes(case, "welcome")).unwrap();
    let (group, _) = client(member, case, storage.clone())
        .join_group(tree, &welcome, None)
        .unwrap();
    MlsGroup::new(group, storage, Basic::new(), Vec::new()).unwrap()
}

/// `MlsMember::load_group`, with the case's PSKs.
fn reload(member: &MlsMember<Basic>, case: &Value, group: &mut MlsGroup<Basic>) -> MlsGroup<Basic> {
    let snapshot: GroupSnapshot = decode(&group.state().unwrap()).unwrap();
    let storage = GroupStorage::restore(&snapshot);
    let loaded = client(member, case, storage.clone())
        .load_group(&snapshot.group_id)
        .unwrap();
    MlsGroup::new(loaded, storage, Basic::new(), snapshot.roster).unwrap()
}

fn authenticator(group: &MlsGroup<Basic>) -> Vec<u8> {
    group.group.epoch_authenticator().unwrap().to_vec()
}

/// Runs every case of a file; the number run.
fn run(name: &str) -> usize {
    let mut run = 0;
    for (i, case) in load(name).iter().enumerate() {
        assert_eq!(case["cipher_suite"], 1, "{name} #{i}: cipher suite 1 only");
        let member = member(case);
        let mut group = join(&member, case);
        assert_eq!(
            authenticator(&group),
            bytes(case, "initial_epoch_authenticator"),
            "{name} #{i}: joined"
        );
        for (e, epoch) in case["epochs"].as_array().unwrap().iter().enumerate() {
            for proposal in epoch["proposals"].as_array().unwrap() {
                let proposal = hex::decode(proposal.as_str().unwrap()).unwrap();
                assert_eq!(
                    group.process(&proposal).unwrap().kind,
                    ProcessedKind::Proposal
                );
            }
            let seen = group.process(&bytes(epoch, "commit")).unwrap();
            assert_eq!(seen.kind, ProcessedKind::Commit, "{name} #{i} epoch {e}");
            assert_eq!(
                authenticator(&group),
                bytes(epoch, "epoch_authenticator"),
                "{name} #{i} epoch {e}"
            );
            group = reload(&member, case, &mut group);
        }
        run += 1;
    }
    run
}

#[test]
fn passive_client_welcome() {
    assert_eq!(run("passive-client-welcome.json"), 8);
}

#[test]
fn passive_client_handling_commit() {
    assert_eq!(run("passive-client-handling-commit.json"), 13);
}

#[test]
fn passive_client_random() {
    assert_eq!(run("passive-client-random.json"), 1);
}

/// The MLSMessages of the serialization vectors (`messages.json`, its first cases): each
/// decodes as what every input of ours goes through and encodes back byte for byte.
#[test]
fn messages_decode_and_encode_back() {
    let fields = [
        "mls_welcome",
        "mls_group_info",
        "mls_key_package",
        "public_message_application",
        "public_message_proposal",
        "public_message_commit",
        "private_message",
    ];
    for (i, case) in load("messages.json").iter().enumerate() {
        for field in fields {
            let encoded = bytes(case, field);
            let message = super::message(&encoded).unwrap();
            assert_eq!(super::to_bytes(&message).unwrap(), encoded, "#{i} {field}");
        }
    }
}
