//! The binding of MLS groups (`crate::group`): `MlsMember`, `MlsGroup`, `Processed`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{PyIdentity, bytes};
use crate::group::{self, MlsGroup, MlsMember, Processed, ProcessedKind};

type Seats = Vec<(u32, Vec<u8>)>;

/// (commit, Welcome or None, access key of the next epoch).
type CommitAnswer<'py> = (
    Bound<'py, PyBytes>,
    Option<Bound<'py, PyBytes>>,
    Bound<'py, PyBytes>,
);

fn seats<'py>(py: Python<'py>, seats: &Seats) -> Vec<(u32, Bound<'py, PyBytes>)> {
    seats
        .iter()
        .map(|(leaf, identity)| (*leaf, bytes(py, identity)))
        .collect()
}

/// The identity key of a key package (MLSMessage), once its credential checks.
#[pyfunction]
pub(super) fn mls_key_package_identity<'py>(
    py: Python<'py>,
    key_package: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(bytes(py, &group::key_package_identity(key_package)?))
}

/// A profile's MLS member: an MLS signature key bound to the identity by the credential,
/// and the private halves of its key packages until they are used.
#[pyclass(frozen, name = "MlsMember", module = "nymchat._native")]
pub(super) struct PyMlsMember(MlsMember);

#[pymethods]
impl PyMlsMember {
    #[staticmethod]
    fn generate(identity: &PyIdentity) -> PyResult<Self> {
        Ok(Self(MlsMember::generate(&identity.0)?))
    }

    /// The member `state` holds; `MlsError` unless it is bound to `identity`.
    #[staticmethod]
    fn from_state(identity: &PyIdentity, state: &[u8]) -> PyResult<Self> {
        Ok(Self(MlsMember::from_state(&identity.0, state)?))
    }

    /// The signature secret and the key packages' secrets: the caller seals them.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, &self.0.state()?))
    }

    fn key_packages<'py>(
        &self,
        py: Python<'py>,
        count: usize,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let packages = py.detach(|| self.0.key_packages(count))?;
        Ok(packages.iter().map(|package| bytes(py, package)).collect())
    }

    fn last_resort_key_package<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, &self.0.last_resort_key_package()?))
    }

    fn create_group(&self, group_id: &[u8], roster: &[u8]) -> PyResult<PyMlsGroup> {
        Ok(PyMlsGroup::new(
            self.0.create_group(group_id, roster)?,
            None,
        ))
    }

    /// The group a Welcome lets us into; `MlsError` if it is not for us or invalid.
    fn join(&self, py: Python<'_>, welcome: &[u8]) -> PyResult<PyMlsGroup> {
        let (group, by) = py.detach(|| self.0.join(welcome))?;
        Ok(PyMlsGroup::new(group, Some(by)))
    }

    fn load_group(&self, py: Python<'_>, state: &[u8]) -> PyResult<PyMlsGroup> {
        Ok(PyMlsGroup::new(
            py.detach(|| self.0.load_group(state))?,
            None,
        ))
    }
}

/// One group as one member holds it.
#[pyclass(name = "MlsGroup", module = "nymchat._native")]
pub(super) struct PyMlsGroup {
    group: MlsGroup,
    joined_by: Option<u32>,
}

impl PyMlsGroup {
    fn new(group: MlsGroup, joined_by: Option<u32>) -> Self {
        Self { group, joined_by }
    }
}

#[pymethods]
impl PyMlsGroup {
    #[getter]
    fn group_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, self.group.group_id())
    }

    #[getter]
    fn epoch(&self) -> u64 {
        self.group.epoch()
    }

    #[getter]
    fn own_index(&self) -> u32 {
        self.group.own_index()
    }

    /// The leaf index of the member whose commit welcomed us, on a group `join` made.
    #[getter]
    fn joined_by(&self) -> Option<u32> {
        self.joined_by
    }

    fn members<'py>(&self, py: Python<'py>) -> Vec<(u32, Bound<'py, PyBytes>)> {
        seats(py, &self.group.members())
    }

    fn roster<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, self.group.roster())
    }

    fn access_key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, &self.group.access_key()?))
    }

    fn state<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let group = &mut self.group;
        Ok(bytes(py, &py.detach(|| group.state())?))
    }

    /// (commit, Welcome or None, access key of the next epoch); pending until
    /// `apply_pending`.
    #[pyo3(signature = (add, remove, roster))]
    fn commit<'py>(
        &mut self,
        py: Python<'py>,
        add: Vec<Vec<u8>>,
        remove: Vec<u32>,
        roster: Option<Vec<u8>>,
    ) -> PyResult<CommitAnswer<'py>> {
        let group = &mut self.group;
        let pending = py.detach(|| {
            let add: Vec<&[u8]> = add.iter().map(Vec::as_slice).collect();
            group.commit(&add, &remove, roster.as_deref())
        })?;
        Ok((
            bytes(py, &pending.commit),
            pending.welcome.map(|welcome| bytes(py, &welcome)),
            bytes(py, &pending.next_access_key),
        ))
    }

    fn apply_pending(&mut self, py: Python<'_>) -> PyResult<()> {
        let group = &mut self.group;
        Ok(py.detach(|| group.apply_pending())?)
    }

    fn clear_pending(&mut self) {
        self.group.clear_pending();
    }

    fn propose_leave<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, &self.group.propose_leave()?))
    }

    fn pending_proposals(&self) -> usize {
        self.group.pending_proposals()
    }

    fn encrypt<'py>(&mut self, py: Python<'py>, plaintext: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, &self.group.encrypt(plaintext)?))
    }

    /// What one message of the group did; `MlsError` if it cannot apply.
    fn process(&mut self, py: Python<'_>, message: &[u8]) -> PyResult<PyProcessed> {
        let group = &mut self.group;
        Ok(PyProcessed(py.detach(|| group.process(message))?))
    }

    fn __repr__(&self) -> String {
        format!(
            "<MlsGroup epoch={} members={}>",
            self.group.epoch(),
            self.group.members().len()
        )
    }
}

/// What processing one group message did.
#[pyclass(frozen, name = "Processed", module = "nymchat._native")]
pub(super) struct PyProcessed(Processed);

#[pymethods]
impl PyProcessed {
    /// "application", "proposal" or "commit".
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0.kind {
            ProcessedKind::Application => "application",
            ProcessedKind::Proposal => "proposal",
            ProcessedKind::Commit => "commit",
        }
    }

    #[getter]
    fn epoch(&self) -> u64 {
        self.0.epoch
    }

    #[getter]
    fn sender(&self) -> u32 {
        self.0.sender
    }

    #[getter]
    fn sender_identity<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.sender_identity)
    }

    #[getter]
    fn plaintext<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.plaintext)
    }

    #[getter]
    fn added<'py>(&self, py: Python<'py>) -> Vec<(u32, Bound<'py, PyBytes>)> {
        seats(py, &self.0.added)
    }

    #[getter]
    fn removed<'py>(&self, py: Python<'py>) -> Vec<(u32, Bound<'py, PyBytes>)> {
        seats(py, &self.0.removed)
    }

    #[getter]
    fn removed_me(&self) -> bool {
        self.0.removed_me
    }

    #[getter]
    fn roster_changed(&self) -> bool {
        self.0.roster_changed
    }

    fn __repr__(&self) -> String {
        format!(
            "<Processed {} epoch={} sender={}>",
            self.kind(),
            self.0.epoch,
            self.0.sender
        )
    }
}
