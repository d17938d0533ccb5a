//! The binding's paths: membership, who reads what, leaving, key updates, late and
//! out-of-order messages, conflicting commits, state, the roster, which commits carry a
//! path, and the credential chain.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use mls_rs::client_builder::MlsConfig;
use mls_rs::group::proposal::{CustomProposal, ProposalType};
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::mls_rules::DefaultMlsRules;
use mls_rs::storage_provider::in_memory::InMemoryKeyPackageStorage;
use mls_rs::{
    CipherSuiteProvider, Client, ExtensionList, Group, IdentityProvider, MlsMessage, WireFormat,
};
use mls_rs_core::identity::MemberValidationContext;

use super::credential::{CREDENTIAL_LABEL, NymchatIdentities};
use super::storage::{GroupSnapshot, GroupStorage, decode};
use super::{
    CIPHER_SUITE, MAX_ROSTER, MlsGroup, MlsMember, ProcessedKind, ROSTER_PROPOSAL, crypto,
    key_package_identity, suite,
};
use crate::error::Error;
use crate::identity::Identity;

struct Person {
    identity: Identity,
    member: MlsMember,
}

impl Person {
    fn new() -> Self {
        let identity = Identity::generate().unwrap();
        let member = MlsMember::generate(&identity).unwrap();
        Self { identity, member }
    }

    fn key(&self) -> Vec<u8> {
        self.identity.signing_public().to_vec()
    }

    fn package(&self) -> Vec<u8> {
        self.member.key_packages(1).unwrap().remove(0)
    }
}

/// `count` people in one group: the first made it and added the others in one commit.
fn group_of(count: usize) -> (Vec<Person>, Vec<MlsGroup>) {
    let people: Vec<Person> = (0..count).map(|_| Person::new()).collect();
    let mut first = people[0].member.create_group(&[7; 32], b"roster").unwrap();
    let packages: Vec<Vec<u8>> = people[1..].iter().map(Person::package).collect();
    let packages: Vec<&[u8]> = packages.iter().map(Vec::as_slice).collect();
    let pending = first.commit(&packages, &[], None).unwrap();
    first.apply_pending().unwrap();
    let welcome = pending.welcome.unwrap();
    let mut groups = vec![first];
    groups.extend(
        people[1..]
            .iter()
            .map(|p| p.member.join(&welcome).unwrap().0),
    );
    (people, groups)
}

fn wire_format(message: &[u8]) -> WireFormat {
    MlsMessage::from_bytes(message).unwrap().wire_format()
}

fn is_mls_error<T>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::Mls(_)))
}

#[test]
fn members_added_by_welcome_share_the_epoch_roster_and_access_key() {
    let (people, groups) = group_of(3);
    let keys: Vec<_> = people.iter().map(Person::key).collect();
    for group in &groups {
        assert_eq!(group.epoch(), 1);
        assert_eq!(group.roster(), b"roster");
        assert_eq!(group.access_key().unwrap(), groups[0].access_key().unwrap());
        let members: Vec<_> = group.members().into_iter().map(|(_, key)| key).collect();
        assert_eq!(members, keys);
    }
    assert_eq!(
        key_package_identity(&people[1].package()).unwrap().to_vec(),
        people[1].key()
    );
}

#[test]
fn handshake_and_application_messages_are_private_messages() {
    let (_, mut groups) = group_of(2);
    assert_eq!(
        wire_format(&groups[0].encrypt(b"x").unwrap()),
        WireFormat::PrivateMessage
    );
    let proposal = groups[1].propose_leave().unwrap();
    assert_eq!(wire_format(&proposal), WireFormat::PrivateMessage);
    groups[0].process(&proposal).unwrap();
    let commit = groups[0].commit(&[], &[], None).unwrap().commit;
    assert_eq!(wire_format(&commit), WireFormat::PrivateMessage);
}

#[test]
fn a_removed_member_cannot_read_what_follows_and_learns_it_was_removed() {
    let (people, mut groups) = group_of(3);
    let pending = groups[0].commit(&[], &[2], None).unwrap();
    assert!(pending.welcome.is_none());
    groups[0].apply_pending().unwrap();
    assert_eq!(groups[0].access_key().unwrap(), pending.next_access_key);
    let seen = groups[1].process(&pending.commit).unwrap();
    assert_eq!(seen.removed, vec![(2, people[2].key())]);
    assert_eq!((seen.sender, seen.sender_identity), (0, people[0].key()));
    assert!(groups[2].process(&pending.commit).unwrap().removed_me);
    let secret = groups[0].encrypt(b"after").unwrap();
    assert_eq!(groups[1].process(&secret).unwrap().plaintext, b"after");
    assert!(is_mls_error(groups[2].process(&secret)));
}

#[test]
fn a_self_remove_proposal_is_committed_by_another_member() {
    let (people, mut groups) = group_of(3);
    let proposal = groups[1].propose_leave().unwrap();
    for group in [0, 2] {
        let seen = groups[group].process(&proposal).unwrap();
        assert_eq!(seen.kind, ProcessedKind::Proposal);
        assert_eq!((seen.sender, seen.sender_identity), (1, people[1].key()));
        assert_eq!(groups[group].pending_proposals(), 1);
    }
    assert!(is_mls_error(groups[2].encrypt(b"too soon")));
    let commit = groups[2].commit(&[], &[], None).unwrap().commit;
    groups[2].apply_pending().unwrap();
    assert_eq!(groups[2].pending_proposals(), 0);
    assert_eq!(
        groups[0].process(&commit).unwrap().removed,
        vec![(1, people[1].key())]
    );
    assert!(groups[1].process(&commit).unwrap().removed_me);
    assert_eq!(groups[0].members(), groups[2].members());
}

#[test]
fn a_key_update_moves_the_epoch_and_keeps_the_members() {
    let (_, mut groups) = group_of(3);
    let members = groups[0].members();
    let old_key = groups[0].access_key().unwrap();
    let pending = groups[1].commit(&[], &[], None).unwrap();
    groups[1].apply_pending().unwrap();
    for group in [0, 2] {
        let seen = groups[group].process(&pending.commit).unwrap();
        assert_eq!((seen.kind, seen.epoch), (ProcessedKind::Commit, 2));
        assert!(seen.added.is_empty() && seen.removed.is_empty() && !seen.roster_changed);
        assert_eq!(groups[group].members(), members);
        assert_eq!(groups[group].access_key().unwrap(), pending.next_access_key);
    }
    assert_ne!(pending.next_access_key, old_key);
}

#[test]
fn application_messages_open_out_of_order_and_from_the_three_prior_epochs() {
    let (people, mut groups) = group_of(2);
    let first = groups[0].encrypt(b"first").unwrap();
    let second = groups[0].encrypt(b"second").unwrap();
    assert_eq!(groups[1].process(&second).unwrap().plaintext, b"second");
    assert_eq!(groups[1].process(&first).unwrap().plaintext, b"first");
    let late = groups[0].encrypt(b"late").unwrap();
    let too_late = groups[0].encrypt(b"too late").unwrap();
    let mut commits = Vec::new();
    for _ in 0..4 {
        commits.push(groups[0].commit(&[], &[], None).unwrap().commit);
        groups[0].apply_pending().unwrap();
    }
    for commit in &commits[..3] {
        groups[1].process(commit).unwrap();
        groups[1].state().unwrap(); // what the caller seals: the prior epochs trimmed
    }
    let seen = groups[1].process(&late).unwrap();
    assert_eq!((seen.plaintext.as_slice(), seen.epoch), (&b"late"[..], 4));
    groups[1].process(&commits[3]).unwrap();
    let state = groups[1].state().unwrap();
    assert!(is_mls_error(groups[1].process(&too_late)));
    let mut reloaded = people[1].member.load_group(&state).unwrap();
    assert!(is_mls_error(reloaded.process(&too_late)));
}

#[test]
fn a_late_message_of_a_removed_member_is_refused_not_given_to_their_successor() {
    let (people, mut groups) = group_of(3);
    let from_carol = groups[2].encrypt(b"carol's last words").unwrap();
    let dave = Person::new();
    let pending = groups[0].commit(&[&dave.package()], &[2], None).unwrap();
    groups[0].apply_pending().unwrap();
    let seen = groups[1].process(&pending.commit).unwrap();
    assert_eq!(seen.removed, vec![(2, people[2].key())]);
    assert_eq!(seen.added, vec![(2, dave.key())]); // the same leaf
    assert!(is_mls_error(groups[1].process(&from_carol)));
}

#[test]
fn the_loser_of_conflicting_commits_clears_applies_the_winner_and_redoes_its_own() {
    let (people, mut groups) = group_of(3);
    let (erin, frank) = (Person::new(), Person::new());
    let won = groups[0].commit(&[&erin.package()], &[], None).unwrap();
    let lost = groups[1].commit(&[&frank.package()], &[], None).unwrap();
    groups[0].apply_pending().unwrap();
    groups[1].clear_pending();
    assert_eq!(groups[1].process(&won.commit).unwrap().epoch, 2);
    assert_eq!(groups[2].process(&won.commit).unwrap().epoch, 2);
    assert!(is_mls_error(groups[2].process(&lost.commit)));
    let redo = groups[1].commit(&[&frank.package()], &[], None).unwrap();
    groups[1].apply_pending().unwrap();
    for group in [0, 2] {
        let seen = groups[group].process(&redo.commit).unwrap();
        assert_eq!(seen.added, vec![(4, frank.key())]);
    }
    let (frank_group, by) = frank.member.join(&redo.welcome.unwrap()).unwrap();
    assert_eq!((frank_group.epoch(), by), (3, 1));
    assert!(is_mls_error(people[2].member.join(&won.welcome.unwrap())));
}

#[test]
fn member_and_group_state_round_trip_and_stay_bound_to_the_identity() {
    let (people, mut groups) = group_of(2);
    let renamed = groups[0].commit(&[], &[], Some(b"renamed")).unwrap();
    groups[0].apply_pending().unwrap();
    groups[1].process(&renamed.commit).unwrap();
    let state = people[1].member.state().unwrap();
    let member = MlsMember::from_state(&people[1].identity, &state).unwrap();
    let mut loaded = member.load_group(&groups[1].state().unwrap()).unwrap();
    assert_eq!(
        (
            loaded.group_id(),
            loaded.epoch(),
            loaded.own_index(),
            loaded.members(),
            loaded.roster()
        ),
        (
            groups[1].group_id(),
            2,
            1,
            groups[1].members(),
            &b"renamed"[..]
        )
    );
    let message = groups[0].encrypt(b"to the loaded").unwrap();
    assert_eq!(
        loaded.process(&message).unwrap().plaintext,
        b"to the loaded"
    );
    let stranger = Identity::generate().unwrap();
    assert!(is_mls_error(MlsMember::from_state(&stranger, &state)));
    assert!(is_mls_error(member.load_group(b"\x01junk")));
    assert!(is_mls_error(MlsMember::from_state(
        &people[1].identity,
        &state[1..]
    )));
}

/// A member whose credential claims `claimed`'s identity key with `signer`'s signature,
/// and whose own client does not check credentials (so that it can make key packages and
/// groups to offer).
fn impostor(claimed: &Identity, signer: &Identity) -> MlsMember<BasicIdentityProvider> {
    let (secret, public) = suite().unwrap().signature_key_generate().unwrap();
    let mut bytes = claimed.signing_public().to_vec();
    bytes.extend_from_slice(&signer.sign(CREDENTIAL_LABEL, public.as_bytes()).unwrap());
    MlsMember {
        signer: secret,
        signing_identity: SigningIdentity::new(
            BasicCredential::new(bytes).into_credential(),
            public,
        ),
        key_packages: InMemoryKeyPackageStorage::new(),
        identities: BasicIdentityProvider::new(),
    }
}

#[test]
fn a_key_package_with_a_forged_credential_is_refused() {
    let (alice, bob, mallory) = (Person::new(), Person::new(), Person::new());
    let forged = impostor(&bob.identity, &mallory.identity)
        .key_packages(1)
        .unwrap();
    assert!(is_mls_error(key_package_identity(&forged[0])));
    let mut group = alice.member.create_group(&[1; 32], b"").unwrap();
    assert!(is_mls_error(group.commit(&[&forged[0]], &[], None)));
    // Nor does a group made by the impostor let anyone in with it.
    let mut theirs = impostor(&bob.identity, &mallory.identity)
        .create_group(&[2; 32], b"")
        .unwrap();
    let welcome = theirs
        .commit(&[&alice.package()], &[], None)
        .unwrap()
        .welcome;
    assert!(is_mls_error(alice.member.join(&welcome.unwrap())));
}

#[test]
fn the_identity_provider_checks_the_chain_and_a_successor_keeps_the_identity() {
    let (bob, mallory) = (Person::new(), Person::new());
    let identity = |member: &MlsMember| member.signing_identity.clone();
    let check = |id: &SigningIdentity| {
        NymchatIdentities.validate_member(id, None, MemberValidationContext::None)
    };
    assert!(check(&identity(&bob.member)).is_ok());
    let forged = impostor(&bob.identity, &mallory.identity).signing_identity;
    assert!(check(&forged).is_err());
    let again = MlsMember::generate(&bob.identity).unwrap();
    let none = ExtensionList::new();
    let successor = |a: &MlsMember, b: &MlsMember| {
        NymchatIdentities
            .valid_successor(&identity(a), &identity(b), &none)
            .unwrap()
    };
    assert!(successor(&bob.member, &again));
    assert!(!successor(&bob.member, &mallory.member));
    assert_eq!(
        NymchatIdentities
            .identity(&identity(&bob.member), &none)
            .unwrap(),
        bob.key()
    );
}

#[test]
fn a_last_resort_key_package_serves_twice_and_others_once() {
    let bob = Person::new();
    let last_resort = bob.member.last_resort_key_package().unwrap();
    let once = bob.package();
    for id in [3u8, 4] {
        let mut group = Person::new().member.create_group(&[id; 32], b"").unwrap();
        let welcome = group.commit(&[&last_resort], &[], None).unwrap().welcome;
        bob.member.join(&welcome.unwrap()).unwrap();
    }
    for (id, joins) in [(5u8, true), (6, false)] {
        let mut group = Person::new().member.create_group(&[id; 32], b"").unwrap();
        let welcome = group.commit(&[&once], &[], None).unwrap().welcome;
        assert_eq!(bob.member.join(&welcome.unwrap()).is_ok(), joins);
    }
}

#[test]
fn hostile_bytes_are_refused() {
    let (people, mut groups) = group_of(2);
    let message = groups[0].encrypt(b"x").unwrap();
    for junk in [
        &b""[..],
        b"\x00\x01",
        &message[..message.len() - 1],
        &[0xff; 64],
    ] {
        assert!(is_mls_error(groups[1].process(junk)));
        assert!(is_mls_error(key_package_identity(junk)));
        assert!(is_mls_error(people[1].member.join(junk)));
    }
    assert!(matches!(
        people[0].member.key_packages(101),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn another_members_removal_by_reference_is_left_out_of_our_commits() {
    let (_, mut groups) = group_of(4);
    let proposal = groups[3].group.propose_remove(2, Vec::new()).unwrap();
    let proposal = proposal.to_bytes().unwrap();
    for group in [0, 1] {
        groups[group].process(&proposal).unwrap();
    }
    let commit = groups[1].commit(&[], &[], None).unwrap().commit;
    groups[1].apply_pending().unwrap();
    let seen = groups[0].process(&commit).unwrap();
    assert!(seen.removed.is_empty());
    assert_eq!(groups[0].members().len(), 4);
    assert_eq!(groups[0].pending_proposals(), 0); // the epoch change dropped it
}

/// `person`'s `group` in a client without nymchat's rules, which commits any proposal.
fn lax(person: &Person, group: &mut MlsGroup) -> Group<impl MlsConfig + use<>> {
    let snapshot: GroupSnapshot = decode(&group.state().unwrap()).unwrap();
    Client::builder()
        .crypto_provider(crypto())
        .identity_provider(NymchatIdentities)
        .group_state_storage(GroupStorage::restore(&snapshot))
        .mls_rules(DefaultMlsRules::new())
        .custom_proposal_types([ProposalType::new(ROSTER_PROPOSAL)])
        .signing_identity(
            person.member.signing_identity.clone(),
            person.member.signer.clone(),
            CIPHER_SUITE,
        )
        .build()
        .load_group(&snapshot.group_id)
        .unwrap()
}

fn roster_proposal(roster: &[u8]) -> CustomProposal {
    CustomProposal::new(ProposalType::new(ROSTER_PROPOSAL), roster.to_vec())
}

#[test]
fn a_commit_that_takes_in_another_members_removal_by_reference_is_refused() {
    let (people, mut groups) = group_of(4);
    let proposal = groups[3].group.propose_remove(2, Vec::new()).unwrap();
    let proposal = proposal.to_bytes().unwrap();
    let mut lax = lax(&people[1], &mut groups[1]);
    lax.process_incoming_message(MlsMessage::from_bytes(&proposal).unwrap())
        .unwrap();
    let commit = lax.commit(Vec::new()).unwrap();
    groups[0].process(&proposal).unwrap();
    let commit = commit.commit_message().to_bytes().unwrap();
    assert!(is_mls_error(groups[0].process(&commit)));
    assert_eq!(groups[0].members().len(), 4);
}

#[test]
fn the_roster_reaches_members_by_the_commit_and_joiners_by_the_welcome() {
    let (people, mut groups) = group_of(3);
    let dave = Person::new();
    let pending = groups[1]
        .commit(&[&dave.package()], &[], Some(b"with dave"))
        .unwrap();
    assert_eq!(groups[1].roster(), b"roster"); // pending until applied
    groups[1].apply_pending().unwrap();
    assert_eq!(groups[1].roster(), b"with dave");
    for group in [0, 2] {
        let seen = groups[group].process(&pending.commit).unwrap();
        assert!(seen.roster_changed);
        assert_eq!((seen.sender, seen.sender_identity), (1, people[1].key()));
        assert_eq!(groups[group].roster(), b"with dave");
    }
    let (joined, _) = dave.member.join(&pending.welcome.unwrap()).unwrap();
    assert_eq!(joined.roster(), b"with dave");
    // A commit without a roster keeps it, and so does a Welcome of that commit.
    let erin = Person::new();
    let pending = groups[0].commit(&[&erin.package()], &[], None).unwrap();
    groups[0].apply_pending().unwrap();
    assert!(!groups[2].process(&pending.commit).unwrap().roster_changed);
    let (joined, _) = erin.member.join(&pending.welcome.unwrap()).unwrap();
    assert_eq!(
        (groups[2].roster(), joined.roster()),
        (&b"with dave"[..], &b"with dave"[..])
    );
}

#[test]
fn a_commit_with_two_rosters_or_a_roster_too_long_is_refused() {
    let (_, mut groups) = group_of(2);
    let too_long = vec![0; MAX_ROSTER + 1];
    for proposals in [
        vec![roster_proposal(b"one"), roster_proposal(b"two")],
        vec![roster_proposal(&too_long)],
    ] {
        let mut builder = groups[0].group.commit_builder();
        for proposal in proposals {
            builder = builder.custom_proposal(proposal);
        }
        let commit = builder
            .build()
            .unwrap()
            .commit_message()
            .to_bytes()
            .unwrap();
        groups[0].clear_pending();
        assert!(is_mls_error(groups[1].process(&commit)));
        assert_eq!((groups[1].epoch(), groups[1].roster()), (1, &b"roster"[..]));
    }
    assert!(matches!(
        groups[0].commit(&[], &[], Some(&too_long)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Person::new().member.create_group(&[9; 32], &too_long),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn another_members_roster_proposal_is_left_out_and_refused_when_committed() {
    let (people, mut groups) = group_of(3);
    let proposal = groups[2]
        .group
        .propose_custom(roster_proposal(b"mine"), Vec::new())
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut lax = lax(&people[1], &mut groups[1]);
    lax.process_incoming_message(MlsMessage::from_bytes(&proposal).unwrap())
        .unwrap();
    let forged = lax.commit(Vec::new()).unwrap();
    let forged = forged.commit_message().to_bytes().unwrap();
    groups[0].process(&proposal).unwrap();
    assert!(is_mls_error(groups[0].process(&forged)));
    let ours = groups[0].commit(&[], &[], None).unwrap().commit;
    groups[0].apply_pending().unwrap();
    assert!(!groups[1].process(&ours).unwrap().roster_changed);
    assert_eq!(
        (groups[0].roster(), groups[1].roster()),
        (&b"roster"[..], &b"roster"[..])
    );
}

/// A creator who added `count` others in one commit, none of whom has joined.
fn freshly_built(count: usize) -> MlsGroup {
    let creator = Person::new();
    let mut group = creator.member.create_group(&[8; 32], b"roster").unwrap();
    let packages: Vec<Vec<u8>> = (0..count).map(|_| Person::new().package()).collect();
    let packages: Vec<&[u8]> = packages.iter().map(Vec::as_slice).collect();
    group.commit(&packages, &[], None).unwrap();
    group.apply_pending().unwrap();
    group
}

#[test]
fn only_a_commit_that_adds_or_sets_the_roster_goes_without_a_path() {
    // A path holds a secret for each member it reaches: in a tree whose members never
    // committed, one for every other member; a commit without one does not grow with them.
    let (mut small, mut large) = (freshly_built(1), freshly_built(64));
    let package = Person::new().package();
    let size = |group: &mut MlsGroup, add: &[&[u8]], remove: &[u32], roster: Option<&[u8]>| {
        let size = group.commit(add, remove, roster).unwrap().commit.len();
        group.clear_pending();
        size
    };
    for (add, roster) in [(&[&package[..]][..], None), (&[], Some(&b"renamed"[..]))] {
        let (in_small, in_large) = (
            size(&mut small, add, &[], roster),
            size(&mut large, add, &[], roster),
        );
        assert_eq!(in_small, in_large);
    }
    for remove in [&[][..], &[1]] {
        let (in_small, in_large) = (
            size(&mut small, &[], remove, None),
            size(&mut large, &[], remove, None),
        );
        assert!(in_large > in_small + 62 * 64);
    }
}
