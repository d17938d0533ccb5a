//! The credential that binds a member's MLS signature key to its nymchat identity, and the
//! identity provider that checks it for every member MLS shows us.
//!
//! A `BasicCredential` whose bytes are `identity key (32) ‖ Sign_identity("mls-credential",
//! MLS signature public key) (64)`: the same label scheme as every other signature of ours.

use mls_rs::ExtensionList;
use mls_rs::IdentityProvider;
use mls_rs::error::IntoAnyError;
use mls_rs::identity::basic::BasicCredential;
use mls_rs::identity::{CredentialType, SigningIdentity};
use mls_rs::time::MlsTime;
use mls_rs_core::identity::MemberValidationContext;

use crate::error::Result;
use crate::identity::{Identity, PUBLIC_KEY_LEN, PublicKey, SIGNATURE_LEN};

/// The role of the identity's signature over the MLS signature key.
pub(crate) const CREDENTIAL_LABEL: &str = "mls-credential";

/// Length of the credential's bytes.
const CREDENTIAL_LEN: usize = PUBLIC_KEY_LEN + SIGNATURE_LEN;

/// The credential of `identity` for the MLS signature public key `signature_key`.
pub(crate) fn credential(identity: &Identity, signature_key: &[u8]) -> Result<BasicCredential> {
    let mut bytes = identity.signing_public().to_vec();
    bytes.extend_from_slice(&identity.sign(CREDENTIAL_LABEL, signature_key)?);
    Ok(BasicCredential::new(bytes))
}

/// Why a member's credential was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialRefused {
    /// Not a basic credential of our length.
    #[error("not a nymchat credential")]
    Malformed,
    /// The identity key does not sign the member's signature key.
    #[error("the credential's identity does not sign its MLS key")]
    Forged,
    /// External senders are not part of nymchat groups.
    #[error("external senders are not accepted")]
    ExternalSender,
}

impl IntoAnyError for CredentialRefused {
    fn into_dyn_error(self) -> std::result::Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(self.into())
    }
}

/// The identity key and signature of a credential of our shape, not checked yet.
fn parts(
    signing_identity: &SigningIdentity,
) -> std::result::Result<(&[u8], &[u8]), CredentialRefused> {
    signing_identity
        .credential
        .as_basic()
        .map(BasicCredential::identifier)
        .filter(|bytes| bytes.len() == CREDENTIAL_LEN)
        .map(|bytes| bytes.split_at(PUBLIC_KEY_LEN))
        .ok_or(CredentialRefused::Malformed)
}

/// The 32-byte identity key `signing_identity` carries, once its signature over the MLS
/// signature key checks.
pub(crate) fn checked_identity(
    signing_identity: &SigningIdentity,
) -> std::result::Result<[u8; PUBLIC_KEY_LEN], CredentialRefused> {
    let (key, signature) = parts(signing_identity)?;
    PublicKey::from_bytes(key)
        .and_then(|key| {
            key.verify(
                CREDENTIAL_LABEL,
                signing_identity.signature_key.as_bytes(),
                signature,
            )
        })
        .map_err(|_| CredentialRefused::Forged)?;
    let mut identity = [0u8; PUBLIC_KEY_LEN];
    identity.copy_from_slice(key);
    Ok(identity)
}

/// Checks every member's credential and names members by their identity key; a member's
/// leaf may change keys only under the same identity.
///
/// mls-rs validates every leaf that enters a group (key package, welcome tree, commit
/// path) with `validate_member`, which checks the signature; `identity` then only reads
/// the key out of a leaf already checked (and is called once per leaf on every load).
#[derive(Clone, Copy, Debug, Default)]
pub struct NymchatIdentities;

impl IdentityProvider for NymchatIdentities {
    type Error = CredentialRefused;

    fn validate_member(
        &self,
        signing_identity: &SigningIdentity,
        _timestamp: Option<MlsTime>,
        _context: MemberValidationContext<'_>,
    ) -> std::result::Result<(), Self::Error> {
        checked_identity(signing_identity).map(|_| ())
    }

    fn validate_external_sender(
        &self,
        _signing_identity: &SigningIdentity,
        _timestamp: Option<MlsTime>,
        _extensions: Option<&ExtensionList>,
    ) -> std::result::Result<(), Self::Error> {
        Err(CredentialRefused::ExternalSender)
    }

    fn identity(
        &self,
        signing_identity: &SigningIdentity,
        _extensions: &ExtensionList,
    ) -> std::result::Result<Vec<u8>, Self::Error> {
        parts(signing_identity).map(|(key, _)| key.to_vec())
    }

    fn valid_successor(
        &self,
        predecessor: &SigningIdentity,
        successor: &SigningIdentity,
        _extensions: &ExtensionList,
    ) -> std::result::Result<bool, Self::Error> {
        Ok(parts(predecessor)?.0 == parts(successor)?.0)
    }

    fn supported_types(&self) -> Vec<CredentialType> {
        vec![BasicCredential::credential_type()]
    }
}
