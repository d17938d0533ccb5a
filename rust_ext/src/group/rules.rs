//! The rules every nymchat member applies to the commits it makes and takes in
//! (mls-rs `MlsRules`; every member must apply the same ones).

use mls_rs::error::IntoAnyError;
use mls_rs::group::proposal::{BorrowedProposal, CustomProposal, ProposalType};
use mls_rs::group::{Roster, Sender};
use mls_rs::mls_rules::{
    CommitDirection, CommitOptions, CommitSource, EncryptionOptions, ProposalBundle, ProposalInfo,
};
use mls_rs::{MlsRules, group::GroupContext};

use super::{MAX_ROSTER, ROSTER_PROPOSAL};

/// A commit that takes in, by reference, a proposal other than a member's own leaving, or
/// sets the roster more than once or too long.
#[derive(Debug, thiserror::Error)]
#[error("a commit takes in another member's proposal other than leaving, or a bad roster")]
pub(crate) struct ProposalRefused;

impl IntoAnyError for ProposalRefused {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(self.into())
    }
}

/// Handshake and application messages encrypted and padded; a commit with a path where
/// RFC 9420 requires one (the roster proposal does not) and the ratchet tree in its one
/// Welcome; and from other members, only their leaving is committed: a commit's adds,
/// removes, roster (one at most) and key updates are the committer's own, so that
/// `Processed.sender` is who made them.
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
                let rosters = proposals.custom_proposals();
                let refused = !proposals.iter_proposals().all(|p| self.acceptable(&p))
                    || rosters.len() > 1
                    || rosters.iter().any(|p| p.proposal.data().len() > MAX_ROSTER);
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
            .with_path_required(false)
            .with_ratchet_tree_extension(true)
            .with_single_welcome_message(true)
            .with_allow_external_commit(false))
    }

    fn custom_proposal_requires_update_path(&self, proposal: &CustomProposal) -> bool {
        proposal.proposal_type() != ProposalType::new(ROSTER_PROPOSAL)
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
