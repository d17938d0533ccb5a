//! mls-rs's group state storage over memory, and the encodings of what Python seals: a
//! member's secrets and a group's state with its retained prior epochs. No file I/O here.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use mls_rs::GroupStateStorage;
use mls_rs_codec::{MlsDecode, MlsEncode, MlsSize};
use mls_rs_core::group::{EpochRecord, GroupState};
use mls_rs_core::key_package::KeyPackageData;
use zeroize::Zeroizing;

use crate::error::{self, Error};

/// Prior epochs kept, so application messages of the last three epochs still open.
pub(crate) const PRIOR_EPOCHS: usize = 3;

/// Version byte that opens every encoding of this module.
const STATE_VERSION: u8 = 1;

/// One group's state and prior epochs, shared by the group and the snapshot taken of it.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupStorage(Arc<Mutex<Stored>>);

#[derive(Debug, Default)]
struct Stored {
    state: Zeroizing<Vec<u8>>,
    epochs: VecDeque<EpochRecord>,
}

impl GroupStorage {
    fn lock(&self) -> MutexGuard<'_, Stored> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A storage holding what `snapshot` wrote.
    pub(crate) fn restore(snapshot: &GroupSnapshot) -> Self {
        let storage = Self::default();
        {
            let mut stored = storage.lock();
            stored.state = Zeroizing::new(snapshot.state.clone());
            stored.epochs = snapshot
                .epochs
                .iter()
                .map(|epoch| EpochRecord::new(epoch.id, Zeroizing::new(epoch.data.clone())))
                .collect();
        }
        storage
    }

    /// The state last written and its prior epochs, with the group's roster.
    pub(crate) fn snapshot(&self, group_id: &[u8], roster: &[u8]) -> GroupSnapshot {
        let stored = self.lock();
        GroupSnapshot {
            version: STATE_VERSION,
            group_id: group_id.to_vec(),
            roster: roster.to_vec(),
            state: stored.state.to_vec(),
            epochs: stored
                .epochs
                .iter()
                .map(|epoch| StoredEpoch {
                    id: epoch.id,
                    data: epoch.data.to_vec(),
                })
                .collect(),
        }
    }
}

impl GroupStateStorage for GroupStorage {
    type Error = Infallible;

    fn state(
        &self,
        _group_id: &[u8],
    ) -> std::result::Result<Option<Zeroizing<Vec<u8>>>, Infallible> {
        let stored = self.lock();
        Ok((!stored.state.is_empty()).then(|| stored.state.clone()))
    }

    fn epoch(
        &self,
        _group_id: &[u8],
        epoch_id: u64,
    ) -> std::result::Result<Option<Zeroizing<Vec<u8>>>, Infallible> {
        Ok(self
            .lock()
            .epochs
            .iter()
            .find(|epoch| epoch.id == epoch_id)
            .map(|epoch| epoch.data.clone()))
    }

    fn write(
        &mut self,
        state: GroupState,
        epoch_inserts: Vec<EpochRecord>,
        epoch_updates: Vec<EpochRecord>,
    ) -> std::result::Result<(), Infallible> {
        let mut stored = self.lock();
        stored.state = state.data;
        stored.epochs.extend(epoch_inserts);
        for update in epoch_updates {
            if let Some(epoch) = stored.epochs.iter_mut().find(|epoch| epoch.id == update.id) {
                *epoch = update;
            }
        }
        while stored.epochs.len() > PRIOR_EPOCHS {
            stored.epochs.pop_front();
        }
        Ok(())
    }

    fn max_epoch_id(&self, _group_id: &[u8]) -> std::result::Result<Option<u64>, Infallible> {
        Ok(self.lock().epochs.back().map(|epoch| epoch.id))
    }
}

/// A prior epoch's secrets, as mls-rs wrote them.
#[derive(Debug, MlsSize, MlsEncode, MlsDecode)]
pub(crate) struct StoredEpoch {
    id: u64,
    data: Vec<u8>,
}

/// What `MlsGroup::state` returns: the roster, mls-rs's snapshot and the prior epochs.
#[derive(Debug, MlsSize, MlsEncode, MlsDecode)]
pub(crate) struct GroupSnapshot {
    version: u8,
    /// The group's id.
    pub(crate) group_id: Vec<u8>,
    /// The group's roster (it is not part of mls-rs's state).
    pub(crate) roster: Vec<u8>,
    state: Vec<u8>,
    epochs: Vec<StoredEpoch>,
}

/// A key package's private halves, under its reference.
#[derive(Debug, MlsSize, MlsEncode, MlsDecode)]
pub(crate) struct StoredKeyPackage {
    /// The key package reference mls-rs stores it under.
    pub(crate) id: Vec<u8>,
    /// Its secrets and encoding.
    pub(crate) data: KeyPackageData,
}

/// What `MlsMember::state` returns: the MLS signature key pair, the credential, and the
/// key packages not used yet.
#[derive(Debug, MlsSize, MlsEncode, MlsDecode)]
pub(crate) struct MemberSnapshot {
    version: u8,
    /// The MLS signature secret key.
    pub(crate) signature_secret: Vec<u8>,
    /// The MLS signature public key.
    pub(crate) signature_public: Vec<u8>,
    /// The credential binding it to the identity.
    pub(crate) credential: Vec<u8>,
    /// The private halves of the key packages handed out.
    pub(crate) key_packages: Vec<StoredKeyPackage>,
}

impl MemberSnapshot {
    /// A snapshot of these parts.
    pub(crate) fn new(
        signature_secret: Vec<u8>,
        signature_public: Vec<u8>,
        credential: Vec<u8>,
        key_packages: Vec<StoredKeyPackage>,
    ) -> Self {
        Self {
            version: STATE_VERSION,
            signature_secret,
            signature_public,
            credential,
            key_packages,
        }
    }
}

/// Encodes a snapshot.
pub(crate) fn encode<T: MlsEncode>(snapshot: &T) -> error::Result<Vec<u8>> {
    snapshot
        .mls_encode_to_vec()
        .map_err(|_| Error::Mls("the state could not be encoded".into()))
}

/// Decodes a snapshot of this version, all of `bytes`.
pub(crate) fn decode<T: MlsDecode + Versioned>(bytes: &[u8]) -> error::Result<T> {
    let refused = || Error::Mls("the stored MLS state is damaged or of another version".into());
    let mut reader = bytes;
    let snapshot = T::mls_decode(&mut reader).map_err(|_| refused())?;
    if !reader.is_empty() || snapshot.version() != STATE_VERSION {
        return Err(refused());
    }
    Ok(snapshot)
}

/// The version byte of an encoding.
pub(crate) trait Versioned {
    /// The version it was written with.
    fn version(&self) -> u8;
}

impl Versioned for GroupSnapshot {
    fn version(&self) -> u8 {
        self.version
    }
}

impl Versioned for MemberSnapshot {
    fn version(&self) -> u8 {
        self.version
    }
}
