//! MLS groups (RFC 9420) through mls-rs, cipher suite 1 only
//! (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519).
//!
//! The rules every nymchat group follows: handshake and application messages are
//! PrivateMessages (padded), a commit carries a path where RFC 9420 requires one (so an
//! add does not, a remove or a key update does) and the Welcome the ratchet tree, three
//! prior epochs are kept for late application messages, and each member's credential
//! binds its MLS signature key to its nymchat identity (`credential`). The roster (group
//! name and members' usernames, opaque here) is each member's own: it changes by the
//! custom proposal `ROSTER_PROPOSAL` in the commit that changes it, and reaches joiners as
//! the GroupInfo extension `ROSTER_EXTENSION` of their Welcome; it is not in the group
//! context, whose change would need a path. State leaves as bytes (`storage`) for the
//! caller to seal.

pub mod credential;
mod rules;
mod storage;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

use std::collections::BTreeMap;

use mls_rs::client_builder::{
    BaseConfig, ClientBuilder, WithCryptoProvider, WithGroupStateStorage, WithIdentityProvider,
    WithKeyPackageRepo, WithMlsRules,
};
use mls_rs::error::IntoAnyError;
use mls_rs::error::MlsError;
use mls_rs::extension::ExtensionType;
use mls_rs::extension::recommended::LastResortKeyPackageExt;
use mls_rs::group::proposal::{CustomProposal, Proposal, ProposalType};
use mls_rs::group::{CommitEffect, CommitMessageDescription, ProposalSender, ReceivedMessage};
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::BasicCredential;
use mls_rs::storage_provider::in_memory::InMemoryKeyPackageStorage;
use mls_rs::{
    CipherSuite, CipherSuiteProvider, Client, CryptoProvider, Extension, ExtensionList, Group,
    IdentityProvider, MlsMessage, ProtocolVersion,
};
use mls_rs_core::crypto::{SignaturePublicKey, SignatureSecretKey};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

use crate::error::{Error, Result};
use crate::identity::{Identity, PUBLIC_KEY_LEN};
use credential::{NymchatIdentities, checked_identity};
use rules::Rules;
use storage::{GroupSnapshot, GroupStorage, MemberSnapshot, StoredKeyPackage, decode, encode};

/// The one cipher suite of nymchat groups.
pub const CIPHER_SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

/// The GroupInfo extension that carries the roster to those a Welcome lets in.
pub const ROSTER_EXTENSION: u16 = 0xF1A0;

/// The custom proposal that sets the roster, in every member's capabilities; it needs no
/// path (RFC 9420 §12.4: a custom proposal type says whether it does).
pub const ROSTER_PROPOSAL: u16 = 0xF1A1;

/// Longest roster.
pub const MAX_ROSTER: usize = 128 * 1024; // 1,000 members at up to 255 nodes (roster v2)

/// The exporter label of a group's access key (what the node checks for posts).
pub const ACCESS_KEY_LABEL: &[u8] = b"nymchat group access";

/// Length of an access key.
pub const ACCESS_KEY_LEN: usize = 32;

/// Most key packages made in one call.
pub const MAX_KEY_PACKAGES: usize = 100;

/// The mls-rs configuration of every client: ours, with the identity provider a parameter
/// only so that the RFC 9420 test vectors (whose credentials are not ours) can go through.
type Config<I> = WithMlsRules<
    Rules,
    WithGroupStateStorage<
        GroupStorage,
        WithKeyPackageRepo<
            InMemoryKeyPackageStorage,
            WithIdentityProvider<I, WithCryptoProvider<RustCryptoProvider, BaseConfig>>,
        >,
    >,
>;

/// What an identity provider must be for `Config`.
pub trait Identities: IdentityProvider + Clone {}

impl<I: IdentityProvider + Clone> Identities for I {}

impl From<MlsError> for Error {
    fn from(err: MlsError) -> Self {
        Error::Mls(err.to_string())
    }
}

fn crypto() -> RustCryptoProvider {
    RustCryptoProvider::with_enabled_cipher_suites(vec![CIPHER_SUITE])
}

fn suite() -> Result<impl CipherSuiteProvider> {
    crypto()
        .cipher_suite_provider(CIPHER_SUITE)
        .ok_or_else(|| Error::Mls("cipher suite unavailable".into()))
}

fn message(bytes: &[u8]) -> Result<MlsMessage> {
    Ok(MlsMessage::from_bytes(bytes)?)
}

fn to_bytes(message: &MlsMessage) -> Result<Vec<u8>> {
    Ok(message.to_bytes()?)
}

fn checked_roster(roster: &[u8]) -> Result<&[u8]> {
    if roster.len() > MAX_ROSTER {
        return Err(Error::InvalidArgument(format!(
            "a roster is at most {MAX_ROSTER} bytes"
        )));
    }
    Ok(roster)
}

/// The roster a commit sets, if it does (`rules` let at most one through).
fn roster_set_by(commit: &CommitMessageDescription) -> Option<Vec<u8>> {
    let (CommitEffect::NewEpoch(epoch)
    | CommitEffect::Removed {
        new_epoch: epoch, ..
    }) = &commit.effect
    else {
        return None;
    };
    epoch
        .applied_proposals
        .iter()
        .find_map(|info| match &info.proposal {
            Proposal::Custom(custom)
                if custom.proposal_type() == ProposalType::new(ROSTER_PROPOSAL) =>
            {
                Some(custom.data().to_vec())
            }
            _ => None,
        })
}

/// The identity key of a key package (MLSMessage), once its credential checks; its own
/// signatures are checked when it is committed.
pub fn key_package_identity(key_package: &[u8]) -> Result<[u8; PUBLIC_KEY_LEN]> {
    let key_package = message(key_package)?
        .into_key_package()
        .ok_or_else(|| Error::Mls("not a key package".into()))?;
    if key_package.cipher_suite() != CIPHER_SUITE
        || key_package.version() != ProtocolVersion::MLS_10
    {
        return Err(Error::Mls("a key package of another cipher suite".into()));
    }
    checked_identity(key_package.signing_identity()).map_err(|err| Error::Mls(err.to_string()))
}

/// A profile's MLS member: an MLS signature key bound to the identity by the credential,
/// and the private halves of its key packages until they are used.
pub struct MlsMember<I = NymchatIdentities> {
    signer: SignatureSecretKey,
    signing_identity: SigningIdentity,
    key_packages: InMemoryKeyPackageStorage,
    identities: I,
}

impl MlsMember {
    /// A fresh MLS signature key, bound to `identity`.
    pub fn generate(identity: &Identity) -> Result<Self> {
        let (signer, public) = suite()?
            .signature_key_generate()
            .map_err(|_| Error::Mls("signature key generation failed".into()))?;
        let credential = credential::credential(identity, public.as_bytes())?;
        Ok(Self {
            signer,
            signing_identity: SigningIdentity::new(credential.into_credential(), public),
            key_packages: InMemoryKeyPackageStorage::new(),
            identities: NymchatIdentities,
        })
    }

    /// The member `state` holds; refused unless it is bound to `identity`.
    pub fn from_state(identity: &Identity, state: &[u8]) -> Result<Self> {
        let snapshot: MemberSnapshot = decode(state)?;
        let signer = SignatureSecretKey::new(snapshot.signature_secret);
        let public = SignaturePublicKey::new(snapshot.signature_public);
        let derived = suite()?
            .signature_key_derive_public(&signer)
            .map_err(|_| Error::Mls("the stored MLS signature key is damaged".into()))?;
        let signing_identity = SigningIdentity::new(
            BasicCredential::new(snapshot.credential).into_credential(),
            public,
        );
        let bound =
            checked_identity(&signing_identity).is_ok_and(|key| key == identity.signing_public());
        if derived != signing_identity.signature_key || !bound {
            return Err(Error::Mls(
                "the MLS state belongs to another identity".into(),
            ));
        }
        let key_packages = InMemoryKeyPackageStorage::new();
        for stored in snapshot.key_packages {
            key_packages.insert(stored.id, stored.data);
        }
        Ok(Self {
            signer,
            signing_identity,
            key_packages,
            identities: NymchatIdentities,
        })
    }

    /// The signature secret and the key packages' secrets: the caller seals them.
    pub fn state(&self) -> Result<Vec<u8>> {
        let credential = self
            .signing_identity
            .credential
            .as_basic()
            .map(|basic| basic.identifier().to_vec())
            .unwrap_or_default();
        encode(&MemberSnapshot::new(
            self.signer.as_bytes().to_vec(),
            self.signing_identity.signature_key.as_bytes().to_vec(),
            credential,
            self.key_packages
                .key_packages()
                .into_iter()
                .map(|(id, data)| StoredKeyPackage { id, data })
                .collect(),
        ))
    }
}

impl<I: Identities> MlsMember<I> {
    fn client(&self, storage: GroupStorage) -> Client<Config<I>> {
        self.builder(storage).build()
    }

    /// Our client configuration (the test vectors add their PSKs to it).
    fn builder(&self, storage: GroupStorage) -> ClientBuilder<Config<I>> {
        Client::builder()
            .crypto_provider(crypto())
            .identity_provider(self.identities.clone())
            .key_package_repo(self.key_packages.clone())
            .group_state_storage(storage)
            .mls_rules(Rules::default())
            .extension_types([ExtensionType::LAST_RESORT_KEY_PACKAGE])
            .custom_proposal_types([ProposalType::new(ROSTER_PROPOSAL)])
            .signing_identity(
                self.signing_identity.clone(),
                self.signer.clone(),
                CIPHER_SUITE,
            )
    }

    /// `count` key packages (MLSMessage each); their secrets join `state()`.
    pub fn key_packages(&self, count: usize) -> Result<Vec<Vec<u8>>> {
        if count > MAX_KEY_PACKAGES {
            return Err(Error::InvalidArgument(format!(
                "at most {MAX_KEY_PACKAGES} key packages at a time"
            )));
        }
        let client = self.client(GroupStorage::default());
        (0..count)
            .map(|_| {
                let package = client.generate_key_package_message(
                    ExtensionList::new(),
                    ExtensionList::new(),
                    None,
                )?;
                to_bytes(&package)
            })
            .collect()
    }

    /// A key package marked last resort (RFC 9420 extension): the node hands it out when
    /// the others are gone, so it may be used more than once.
    pub fn last_resort_key_package(&self) -> Result<Vec<u8>> {
        let mut extensions = ExtensionList::new();
        extensions
            .set_from(LastResortKeyPackageExt)
            .map_err(|_| Error::Mls("the last-resort extension".into()))?;
        let client = self.client(GroupStorage::default());
        to_bytes(&client.generate_key_package_message(extensions, ExtensionList::new(), None)?)
    }

    /// A new group at epoch 0 with only us, and `roster` as its roster.
    pub fn create_group(&self, group_id: &[u8], roster: &[u8]) -> Result<MlsGroup<I>> {
        let roster = checked_roster(roster)?.to_vec();
        let storage = GroupStorage::default();
        let group = self.client(storage.clone()).create_group_with_id(
            group_id.to_vec(),
            ExtensionList::new(),
            ExtensionList::new(),
            None,
        )?;
        MlsGroup::new(group, storage, self.identities.clone(), roster)
    }

    /// The group `welcome` (MLSMessage) lets us into, with the roster it carries; the key
    /// package it used is gone from `state()` unless it was the last-resort one.
    pub fn join(&self, welcome: &[u8]) -> Result<(MlsGroup<I>, u32)> {
        let storage = GroupStorage::default();
        let (mut group, info) =
            self.client(storage.clone())
                .join_group(None, &message(welcome)?, None)?;
        let roster = info
            .group_info_extensions
            .get(ExtensionType::new(ROSTER_EXTENSION))
            .map(|extension| extension.extension_data().to_vec())
            .unwrap_or_default();
        checked_roster(&roster).map_err(|_| Error::Mls("a Welcome's roster is too long".into()))?;
        group.write_to_storage()?; // drops the used key package from ours
        let group = MlsGroup::new(group, storage, self.identities.clone(), roster)?;
        Ok((group, info.sender))
    }

    /// The group `state` (from `MlsGroup::state`) holds.
    pub fn load_group(&self, state: &[u8]) -> Result<MlsGroup<I>> {
        let snapshot: GroupSnapshot = decode(state)?;
        let storage = GroupStorage::restore(&snapshot);
        let group = self
            .client(storage.clone())
            .load_group(&snapshot.group_id)?;
        MlsGroup::new(group, storage, self.identities.clone(), snapshot.roster)
    }
}

/// What processing one message did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessedKind {
    /// An application message.
    Application,
    /// A proposal, kept until a commit covers it.
    Proposal,
    /// A commit: the group is at a new epoch.
    Commit,
}

/// The outcome of `MlsGroup::process`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    /// What the message was.
    pub kind: ProcessedKind,
    /// The group's epoch after processing.
    pub epoch: u64,
    /// Leaf index of the author, proposer or committer.
    pub sender: u32,
    /// Their identity key.
    pub sender_identity: Vec<u8>,
    /// An application message's plaintext, else empty.
    pub plaintext: Vec<u8>,
    /// Members a commit added: (leaf index, identity key).
    pub added: Vec<(u32, Vec<u8>)>,
    /// Members a commit removed.
    pub removed: Vec<(u32, Vec<u8>)>,
    /// A commit removed us: the group is over for us.
    pub removed_me: bool,
    /// A commit set a roster other than the one before.
    pub roster_changed: bool,
}

/// What `MlsGroup::commit` made, pending until the node accepts it.
#[derive(Clone, Debug)]
pub struct PendingCommit {
    /// The commit (MLSMessage).
    pub commit: Vec<u8>,
    /// The Welcome (MLSMessage) for the members it adds, if any.
    pub welcome: Option<Vec<u8>>,
    /// The access key of the epoch it leads to.
    pub next_access_key: Vec<u8>,
}

/// One group as one member holds it.
pub struct MlsGroup<I: Identities = NymchatIdentities> {
    group: Group<Config<I>>,
    storage: GroupStorage,
    identities: I,
    /// Each member's identity this epoch, by leaf.
    seats: BTreeMap<u32, Vec<u8>>,
    /// The roster: the last one a commit set, or the Welcome or `create_group` gave.
    roster: Vec<u8>,
}

/// Members added and removed between two rosters.
type Changes = (Vec<(u32, Vec<u8>)>, Vec<(u32, Vec<u8>)>);

impl<I: Identities> MlsGroup<I> {
    fn new(
        group: Group<Config<I>>,
        storage: GroupStorage,
        identities: I,
        roster: Vec<u8>,
    ) -> Result<Self> {
        let mut this = Self {
            group,
            storage,
            identities,
            seats: BTreeMap::new(),
            roster,
        };
        this.seats = this.current_seats()?;
        Ok(this)
    }

    fn current_seats(&self) -> Result<BTreeMap<u32, Vec<u8>>> {
        let extensions = &self.group.context().extensions;
        self.group
            .roster()
            .members_iter()
            .map(|member| {
                let identity = self
                    .identities
                    .identity(&member.signing_identity, extensions)
                    .map_err(|err| Error::Mls(format!("{:?}", err.into_any_error())))?;
                Ok((member.index, identity))
            })
            .collect()
    }

    /// After `commit` moved the epoch: who came and went, whether the roster changed.
    fn advance(&mut self, commit: &CommitMessageDescription) -> Result<(Changes, bool)> {
        let seats = self.current_seats()?;
        let roster = roster_set_by(commit).unwrap_or_else(|| self.roster.clone());
        let removed: Vec<_> = self
            .seats
            .iter()
            .filter(|(leaf, identity)| seats.get(leaf) != Some(identity))
            .map(|(leaf, identity)| (*leaf, identity.clone()))
            .collect();
        let added = seats
            .iter()
            .filter(|(leaf, identity)| self.seats.get(leaf) != Some(identity))
            .map(|(leaf, identity)| (*leaf, identity.clone()))
            .collect();
        let roster_changed = roster != self.roster;
        self.seats = seats;
        self.roster = roster;
        Ok(((added, removed), roster_changed))
    }

    /// The identity at `leaf`. A message of a prior epoch is from the member there now:
    /// mls-rs refuses one whose sender's leaf has changed hands since (its prior epochs
    /// keep only signature keys), rather than attribute it to the successor.
    fn identity_at(&self, leaf: u32) -> Result<Vec<u8>> {
        self.seats
            .get(&leaf)
            .cloned()
            .ok_or_else(|| Error::Mls(format!("no member at leaf {leaf}")))
    }

    /// The group's id.
    pub fn group_id(&self) -> &[u8] {
        self.group.group_id()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.group.current_epoch()
    }

    /// Our leaf index.
    pub fn own_index(&self) -> u32 {
        self.group.current_member_index()
    }

    /// The members: (leaf index, identity key), by leaf.
    pub fn members(&self) -> Vec<(u32, Vec<u8>)> {
        self.seats
            .iter()
            .map(|(leaf, identity)| (*leaf, identity.clone()))
            .collect()
    }

    /// The roster's bytes, empty if none.
    pub fn roster(&self) -> &[u8] {
        &self.roster
    }

    /// This epoch's access key: what the node checks a post against.
    pub fn access_key(&self) -> Result<Vec<u8>> {
        Ok(self
            .group
            .export_secret(ACCESS_KEY_LABEL, b"", ACCESS_KEY_LEN)?
            .as_bytes()
            .to_vec())
    }

    /// The state with the prior epochs kept: the caller seals it. Writing it is also what
    /// drops prior epochs beyond the three kept (mls-rs holds new ones until then).
    pub fn state(&mut self) -> Result<Vec<u8>> {
        self.group.write_to_storage()?;
        encode(&self.storage.snapshot(self.group_id(), &self.roster))
    }

    /// A commit (MLSMessage) of adds (key packages), removes (leaf indexes), the roster if
    /// given, and every member's leaving proposed (`rules`), with a path unless it only
    /// adds and sets the roster; the Welcome for the added, if any, with the roster; the
    /// access key of the epoch it leads to. Nothing changes until `apply_pending`.
    pub fn commit(
        &mut self,
        add: &[&[u8]],
        remove: &[u32],
        roster: Option<&[u8]>,
    ) -> Result<PendingCommit> {
        let roster = roster.map(checked_roster).transpose()?;
        let mut welcome_roster = ExtensionList::new();
        welcome_roster.set(Extension::new(
            ExtensionType::new(ROSTER_EXTENSION),
            roster.unwrap_or(&self.roster).to_vec(),
        ));
        let mut builder = self
            .group
            .commit_builder()
            .set_group_info_ext(welcome_roster);
        for key_package in add {
            builder = builder.add_member(message(key_package)?)?;
        }
        for leaf in remove {
            builder = builder.remove_member(*leaf)?;
        }
        if let Some(roster) = roster {
            builder = builder.custom_proposal(CustomProposal::new(
                ProposalType::new(ROSTER_PROPOSAL),
                roster.to_vec(),
            ));
        }
        let output = builder.build()?;
        let commit = to_bytes(output.commit_message())?;
        let welcome = output
            .welcome_messages()
            .first()
            .map(to_bytes)
            .transpose()?;
        let mut next = self.group.clone();
        next.apply_pending_commit()?;
        let next_access_key = next
            .export_secret(ACCESS_KEY_LABEL, b"", ACCESS_KEY_LEN)?
            .as_bytes()
            .to_vec();
        Ok(PendingCommit {
            commit,
            welcome,
            next_access_key,
        })
    }

    /// Moves to the epoch of our pending commit (the node accepted it).
    pub fn apply_pending(&mut self) -> Result<()> {
        let commit = self.group.apply_pending_commit()?;
        self.advance(&commit)?;
        Ok(())
    }

    /// Drops our pending commit (another won the epoch).
    pub fn clear_pending(&mut self) {
        self.group.clear_pending_commit();
    }

    /// A proposal (MLSMessage) that removes us, for another member to commit.
    pub fn propose_leave(&mut self) -> Result<Vec<u8>> {
        let own = self.own_index();
        to_bytes(&self.group.propose_remove(own, Vec::new())?)
    }

    /// Proposals received (or made) and not committed yet: while any is, MLS refuses to
    /// encrypt until a commit (which drops those `rules` leave out).
    pub fn pending_proposals(&self) -> usize {
        self.group.get_cached_proposals().len()
    }

    /// An application message (MLSMessage) of `plaintext`.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        to_bytes(
            &self
                .group
                .encrypt_application_message(plaintext, Vec::new())?,
        )
    }

    /// Processes one message of the group; an error if it cannot apply.
    pub fn process(&mut self, bytes: &[u8]) -> Result<Processed> {
        let message = message(bytes)?;
        let received = self.group.process_incoming_message(message)?;
        let mut processed = Processed {
            kind: ProcessedKind::Application,
            epoch: 0,
            sender: 0,
            sender_identity: Vec::new(),
            plaintext: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            removed_me: false,
            roster_changed: false,
        };
        match received {
            ReceivedMessage::ApplicationMessage(application) => {
                processed.sender = application.sender_index;
                processed.sender_identity = self.identity_at(application.sender_index)?;
                processed.plaintext = application.data().to_vec();
            }
            ReceivedMessage::Proposal(proposal) => {
                let ProposalSender::Member(sender) = proposal.sender else {
                    return Err(Error::Mls("a proposal from outside the group".into()));
                };
                processed.kind = ProcessedKind::Proposal;
                processed.sender = sender;
                processed.sender_identity = self.identity_at(sender)?;
            }
            ReceivedMessage::Commit(commit) => {
                processed.kind = ProcessedKind::Commit;
                processed.sender = commit.committer;
                processed.sender_identity = self.identity_at(commit.committer)?;
                processed.removed_me = matches!(commit.effect, CommitEffect::Removed { .. });
                if !processed.removed_me {
                    let ((added, removed), roster_changed) = self.advance(&commit)?;
                    processed.added = added;
                    processed.removed = removed;
                    processed.roster_changed = roster_changed;
                }
            }
            _ => return Err(Error::Mls("not a group message".into())),
        }
        processed.epoch = self.epoch();
        Ok(processed)
    }
}
