//! The rules every nymchat member applies to the commits it makes and takes in
//! (mls-rs `MlsRules`; every member must apply the same ones).

use mls_rs::error::IntoAnyError;
use mls_rs::group::proposal::{BorrowedProposal, CustomProposal};
use mls_rs::group::{Roster, Sender};
use mls_rs::mls_rules::{
    CommitDirection, CommitOptions, CommitSource, EncryptionOptions, ProposalBundle, ProposalInfo,
};
use mls_rs::{MlsRules, group::GroupContext};

/// A commit that takes in, by reference, a proposal other than a member's own leaving.
#[derive(Debug, thiserror::Error)]
#[error("a commit takes in another member's proposal other than leaving")]
pub(crate) struct ProposalRefused;

impl IntoAnyError for ProposalRefused {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(self.into())
    }
}

/// Handshake and application messages encrypted and padded; every commit with a path and
/// the ratchet tree in its one Welcome; and from other members, only their leaving is
/// committed: a commit's adds, removes, roster changes and key updates are the
/// committer's own, so that `Processed.sender` is who made them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rules {
    /// The RFC 9420 test vectors' groups take in any proposal by reference.
    #[cfg(test)]
    pub(crate) any_by_reference: bool,
}

impl Rules {
    /// Whether a commit may take `proposal` in: the committer's own, or a member's
    /// proposal to remove itself.
    fn acceptable(&self, proposal: &ProposalInfo<BorrowedProposal<'_>>) -> bool {
        #[cfg(test)]
        if self.any_by_reference {
            return true;
        }
        match (&proposal.proposal, proposal.sender) {
            _ if !proposal.is_by_reference() => true,
            (BorrowedProposal::Remove(remove), Sender::Member(sender)) => {
                remove.to_remove() == sender
            }
            _ => false,
        }
    }
}

impl MlsRules for Rules {
    type Error = ProposalRefused;

    fn filter_proposals(
        &self,
        direction: CommitDirection,
        _source: CommitSource,
        _roster: &Roster,
        _context: &GroupContext,
        mut proposals: ProposalBundle,
    ) -> Result<ProposalBundle, ProposalRefused> {
        match direction {
            // Proposals we may not take in are left out (the epoch change drops them).
            CommitDirection::Send => {
                proposals.retain(|proposal| Ok::<_, ProposalRefused>(self.acceptable(proposal)))?;
                proposals.retain_custom(|proposal: &ProposalInfo<CustomProposal>| {
                    Ok::<_, ProposalRefused>(!proposal.is_by_reference())
                })?;
                Ok(proposals)
            }
            CommitDirection::Receive => {
                let refused = !proposals.iter_proposals().all(|p| self.acceptable(&p));
                if refused {
                    return Err(ProposalRefused);
                }
                Ok(proposals)
            }
        }
    }

    fn commit_options(
        &self,
        _roster: &Roster,
        _context: &GroupContext,
        _proposals: &ProposalBundle,
    ) -> Result<CommitOptions, ProposalRefused> {
        Ok(CommitOptions::new()
            .with_path_required(true)
            .with_ratchet_tree_extension(true)
            .with_single_welcome_message(true)
            .with_allow_external_commit(false))
    }

    fn encryption_options(
        &self,
        _roster: &Roster,
        _context: &GroupContext,
    ) -> Result<EncryptionOptions, ProposalRefused> {
        let mut options = EncryptionOptions::default(); // padding: mls-rs's step function
        options.encrypt_control_messages = true;
        Ok(options)
    }
}
