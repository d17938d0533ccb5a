//! The Python binding: `nymchat._native`. Thin: argument conversion, GIL release on
//! long calls, and mapping `Error` onto the classes of `nymchat.errors`.

use std::fmt;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::envelope;
use crate::error::Error;
use crate::framing::{self, Framer, Limits, Reassembler};
use crate::identity::{self, Identity, PublicKey, SignedItem};
use crate::json::{self, ClientRequestText};
use crate::session::{Account, Session};
use group::{PyMlsGroup, PyMlsMember, PyProcessed, mls_key_package_identity};

mod group;

/// Binds the classes of `nymchat.errors` the core raises: `errors::Name` is the class,
/// imported once and kept; `bind_errors` imports them all when the module loads, so a
/// class missing from `nymchat.errors` fails that import, not a later error.
macro_rules! native_errors {
    ($($name:ident),+) => {
        mod errors {
            $(pyo3::import_exception!(nymchat.errors, $name);)+
        }

        fn bind_errors(py: Python<'_>) -> PyResult<()> {
            let module = py.import("nymchat.errors")?;
            $(
                module.getattr(stringify!($name))?; // present: binding it cannot fail
                py.get_type::<errors::$name>();
            )+
            Ok(())
        }
    };
}

native_errors!(
    BadKey,
    BadSignature,
    DecryptionFailed,
    SessionBroken,
    FramingError,
    InvalidArgument,
    JsonError,
    MlsError
);

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        match err {
            Error::BadKey(_) => errors::BadKey::new_err(message),
            Error::BadSignature => errors::BadSignature::new_err(message),
            Error::DecryptionFailed(_) => errors::DecryptionFailed::new_err(message),
            Error::SessionBroken(_) => errors::SessionBroken::new_err(message),
            Error::Framing(_) => errors::FramingError::new_err(message),
            Error::InvalidArgument(_) => errors::InvalidArgument::new_err(message),
            Error::Json(_) => errors::JsonError::new_err(message),
            Error::Mls(_) => errors::MlsError::new_err(message),
            Error::Random(_) => PyOSError::new_err(message),
        }
    }
}

fn bytes<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, data)
}

/// Long-term keys of a user or node: Ed25519 (signing) and X25519 (agreement).
/// The secret keys stay inside this object.
#[pyclass(frozen, name = "Identity", module = "nymchat._native")]
struct PyIdentity(Identity);

#[pymethods]
impl PyIdentity {
    /// A fresh identity from the operating system's random source.
    #[staticmethod]
    fn generate() -> PyResult<Self> {
        Ok(Self(Identity::generate()?))
    }

    /// Restores an identity from the 64 bytes of `secret_bytes()`.
    #[staticmethod]
    fn from_secret_bytes(secret: &[u8]) -> PyResult<Self> {
        Ok(Self(Identity::from_secret(secret)?))
    }

    /// The secret keys (Ed25519 seed ‖ X25519 secret), for the encrypted keystore only.
    fn secret_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, self.0.secret_bytes().as_ref())
    }

    #[getter]
    fn signing_public<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.signing_public())
    }

    #[getter]
    fn agreement_public<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.agreement_public())
    }

    /// Signs `message` in the role `label` (domain-separated).
    fn sign<'py>(
        &self,
        py: Python<'py>,
        label: &str,
        message: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, &self.0.sign(label, message)?))
    }

    fn __repr__(&self) -> String {
        format!(
            "<Identity signing_public={}>",
            hex(&self.0.signing_public())
        )
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// A checked Ed25519 public key (weak keys refused), decompressed once.
#[pyclass(frozen, name = "PublicKey", module = "nymchat._native")]
struct PyPublicKey(PublicKey);

#[pymethods]
impl PyPublicKey {
    #[new]
    fn new(public: &[u8]) -> PyResult<Self> {
        Ok(Self(PublicKey::from_bytes(public)?))
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.to_bytes())
    }

    /// Raises `BadSignature` unless `signature` signs `message` in the role `label`.
    fn verify(&self, label: &str, message: &[u8], signature: &[u8]) -> PyResult<()> {
        Ok(self.0.verify(label, message, signature)?)
    }

    fn __repr__(&self) -> String {
        format!("<PublicKey {}>", hex(&self.0.to_bytes()))
    }
}

/// Raises `BadSignature` unless `signature` by `public` signs `message` as `label`.
#[pyfunction]
fn verify(public: &[u8], label: &str, message: &[u8], signature: &[u8]) -> PyResult<()> {
    Ok(PublicKey::from_bytes(public)?.verify(label, message, signature)?)
}

/// Verifies `[(public_key, label, message, signature), ...]` at once; returns one bool
/// per item. `public_key` is a `PublicKey` or 32 bytes; a malformed key is a `False`.
#[pyfunction]
fn verify_batch(
    py: Python<'_>,
    items: Vec<(Bound<'_, PyAny>, PyBackedStr, PyBackedBytes, PyBackedBytes)>,
) -> PyResult<Vec<bool>> {
    let mut keys: Vec<Option<PublicKey>> = Vec::with_capacity(items.len());
    for (key, ..) in &items {
        keys.push(match key.cast::<PyPublicKey>() {
            Ok(key) => Some(key.get().0.clone()),
            Err(_) => PublicKey::from_bytes(&key.extract::<PyBackedBytes>()?).ok(),
        });
    }
    for (_, label, ..) in &items {
        identity::check_label(label)?;
    }
    let parts: Vec<(&PublicKey, &str, &[u8], &[u8])> = items
        .iter()
        .zip(&keys)
        .filter_map(|((_, label, message, signature), key)| {
            key.as_ref()
                .map(|key| (key, &**label, &**message, &**signature))
        })
        .collect();
    let verdicts = py.detach(|| {
        let signed: Vec<SignedItem<'_>> = parts
            .iter()
            .map(|&(key, label, message, signature)| SignedItem {
                key,
                label,
                message,
                signature,
            })
            .collect();
        identity::verify_batch(&signed)
    })?;
    let mut verdicts = verdicts.into_iter();
    Ok(keys
        .iter()
        .map(|key| key.is_some() && verdicts.next().unwrap_or(false))
        .collect())
}

/// Seals `plaintext` from `sender` to the X25519 key `recipient` in `context`.
#[pyfunction]
fn seal_envelope<'py>(
    py: Python<'py>,
    sender: &PyIdentity,
    recipient: &[u8],
    context: &str,
    message_id: &[u8],
    plaintext: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let sealed = envelope::seal(&sender.0, recipient, context, message_id, plaintext)?;
    Ok(bytes(py, &sealed))
}

/// Opens an envelope for `recipient`; returns `(sender_public, message_id, plaintext)`.
#[pyfunction]
#[pyo3(signature = (recipient, context, sealed, expected_sender=None))]
fn open_envelope<'py>(
    py: Python<'py>,
    recipient: &PyIdentity,
    context: &str,
    sealed: &[u8],
    expected_sender: Option<&[u8]>,
) -> PyResult<(
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
)> {
    let opened = envelope::open(&recipient.0, context, sealed, expected_sender)?;
    Ok((
        bytes(py, &opened.sender),
        bytes(py, &opened.message_id),
        bytes(py, &opened.plaintext),
    ))
}

/// Seals `plaintext` to the X25519 key `recipient` in `context`, with no sender and no
/// signature (what is inside must authenticate itself).
#[pyfunction]
fn seal_anonymous<'py>(
    py: Python<'py>,
    recipient: &[u8],
    context: &str,
    message_id: &[u8],
    plaintext: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let sealed = envelope::seal_anonymous(recipient, context, message_id, plaintext)?;
    Ok(bytes(py, &sealed))
}

/// Opens an anonymous envelope for `recipient`; returns `(message_id, plaintext)`.
#[pyfunction]
fn open_anonymous<'py>(
    py: Python<'py>,
    recipient: &PyIdentity,
    context: &str,
    sealed: &[u8],
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let (message_id, plaintext) = envelope::open_anonymous(&recipient.0, context, sealed)?;
    Ok((bytes(py, &message_id), bytes(py, &plaintext)))
}

/// Number of frames (each `FRAME_SIZE` bytes) a payload of `length` bytes becomes.
#[pyfunction]
fn frame_count(length: usize) -> PyResult<usize> {
    Ok(framing::frame_count(length)?)
}

/// Splits `payload` into padded frames of `FRAME_SIZE` bytes, each written straight into
/// its `bytes`.
#[pyfunction]
fn encode_frames<'py>(
    py: Python<'py>,
    payload: &[u8],
    message_id: &[u8],
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let framer = Framer::new(payload, message_id)?;
    (0..framer.count())
        .map(|index| {
            PyBytes::new_with(py, framing::FRAME_SIZE, |frame| {
                Ok(framer.write(index, frame)?)
            })
        })
        .collect()
}

/// A message reassembled straight into the `bytes` object that `push` hands back.
struct PyPayload(Py<PyBytes>);

impl framing::Buffer for PyPayload {
    fn zeroed(len: usize) -> crate::error::Result<Self> {
        Python::attach(|py| PyBytes::new_with(py, len, |_| Ok(())).map(Bound::unbind))
            .map(Self)
            .map_err(|_| Error::Framing(format!("no memory for a message of {len} bytes")))
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let object = self.0.as_ptr();
        // SAFETY: the object is a `bytes` made by `zeroed` and held only here until its
        // message completes; `push` hands it out then and it is never written again, so no
        // Python code sees it change (nor has hashed it). A bytes object's size is fixed.
        unsafe {
            let data = pyo3::ffi::PyBytes_AsString(object).cast::<u8>();
            let len = pyo3::ffi::PyBytes_Size(object).max(0) as usize;
            std::slice::from_raw_parts_mut(data, len)
        }
    }
}

/// Reassembles frames into messages, within fixed memory bounds, fair between sources
/// (one source evicts only its own messages). The caller passes the time (seconds, any
/// monotonic origin) into each call.
#[pyclass(name = "Reassembler", module = "nymchat._native")]
struct PyReassembler(Reassembler<PyPayload>);

#[pymethods]
impl PyReassembler {
    #[new]
    #[pyo3(signature = (*, max_message_bytes=None, max_pending_bytes=None,
                        max_pending_messages=None, max_source_messages=None,
                        max_source_bytes=None, ttl=None, completed_memory=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        max_message_bytes: Option<usize>,
        max_pending_bytes: Option<usize>,
        max_pending_messages: Option<usize>,
        max_source_messages: Option<usize>,
        max_source_bytes: Option<usize>,
        ttl: Option<f64>,
        completed_memory: Option<usize>,
    ) -> Self {
        let d = Limits::default();
        Self(Reassembler::new(Limits {
            max_message_bytes: max_message_bytes.unwrap_or(d.max_message_bytes),
            max_pending_bytes: max_pending_bytes.unwrap_or(d.max_pending_bytes),
            max_pending_messages: max_pending_messages.unwrap_or(d.max_pending_messages),
            max_source_messages: max_source_messages.unwrap_or(d.max_source_messages),
            max_source_bytes: max_source_bytes.unwrap_or(d.max_source_bytes),
            ttl: ttl.unwrap_or(d.ttl),
            completed_memory: completed_memory.unwrap_or(d.completed_memory),
        }))
    }

    /// Takes one frame; returns `(message_id, payload)` when it completes a message,
    /// `None` otherwise (including duplicates). Raises `FramingError` on a bad frame.
    #[pyo3(signature = (frame, now, source=b"".as_slice()))]
    fn push<'py>(
        &mut self,
        py: Python<'py>,
        frame: &[u8],
        now: f64,
        source: &[u8],
    ) -> PyResult<Option<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>> {
        Ok(self
            .0
            .push(frame, now, source)?
            .map(|done| (bytes(py, &done.message_id), done.payload.0.into_bound(py))))
    }

    /// Drops incomplete messages older than the TTL.
    fn expire(&mut self, now: f64) {
        self.0.expire(now);
    }

    #[getter]
    fn pending_messages(&self) -> usize {
        self.0.pending_messages()
    }

    #[getter]
    fn pending_bytes(&self) -> usize {
        self.0.pending_bytes()
    }

    #[getter]
    fn evicted(&self) -> u64 {
        self.0.evicted()
    }
}

/// A device's double-ratchet keys (vodozemac Olm): identity, one-time and fallback keys.
/// Keys are 32 raw bytes; key ids are integers.
#[pyclass(name = "Account", module = "nymchat._native")]
struct PyAccount(Account);

#[pymethods]
impl PyAccount {
    #[new]
    fn new() -> Self {
        Self(Account::default())
    }

    #[staticmethod]
    fn from_pickle(pickle: &str, key: &[u8]) -> PyResult<Self> {
        Ok(Self(Account::from_pickle(pickle, key)?))
    }

    /// The state, encrypted under the 32-byte `key`.
    fn pickle(&self, key: &[u8]) -> PyResult<String> {
        Ok(self.0.pickle(key)?)
    }

    #[getter]
    fn curve25519_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes(py, &self.0.curve25519_key())
    }

    /// Makes `count` one-time keys; returns every unpublished one as `(id, key)`.
    fn generate_one_time_keys<'py>(
        &mut self,
        py: Python<'py>,
        count: usize,
    ) -> PyResult<Vec<(u64, Bound<'py, PyBytes>)>> {
        let keys = self.0.generate_one_time_keys(count)?;
        Ok(keys.iter().map(|(id, k)| (*id, bytes(py, k))).collect())
    }

    fn one_time_keys<'py>(&self, py: Python<'py>) -> PyResult<Vec<(u64, Bound<'py, PyBytes>)>> {
        let keys = self.0.one_time_keys()?;
        Ok(keys.iter().map(|(id, k)| (*id, bytes(py, k))).collect())
    }

    fn generate_fallback_key<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(u64, Bound<'py, PyBytes>)> {
        let (id, key) = self.0.generate_fallback_key()?;
        Ok((id, bytes(py, &key)))
    }

    /// The fallback key as `(id, key)` while it is not published yet, else None.
    fn fallback_key<'py>(&self, py: Python<'py>) -> PyResult<Option<(u64, Bound<'py, PyBytes>)>> {
        let key = self.0.fallback_key()?;
        Ok(key.map(|(id, key)| (id, bytes(py, &key))))
    }

    fn mark_keys_as_published(&mut self) {
        self.0.mark_keys_as_published();
    }

    /// Opens a session from a peer's identity key and one of their one-time keys.
    fn outbound(&self, identity: &[u8], one_time_key: &[u8]) -> PyResult<PySession> {
        Ok(PySession(self.0.outbound(identity, one_time_key)?))
    }

    /// Accepts a peer's first message: returns `(session, plaintext)`.
    fn inbound<'py>(
        &mut self,
        py: Python<'py>,
        identity: &[u8],
        message: &[u8],
    ) -> PyResult<(PySession, Bound<'py, PyBytes>)> {
        let (session, plaintext) = self.0.inbound(identity, message)?;
        Ok((PySession(session), bytes(py, &plaintext)))
    }
}

/// A double-ratchet session with one peer.
#[pyclass(name = "Session", module = "nymchat._native")]
struct PySession(Session);

#[pymethods]
impl PySession {
    #[staticmethod]
    fn from_pickle(pickle: &str, key: &[u8]) -> PyResult<Self> {
        Ok(Self(Session::from_pickle(pickle, key)?))
    }

    fn pickle(&self, key: &[u8]) -> PyResult<String> {
        Ok(self.0.pickle(key)?)
    }

    #[getter]
    fn id(&self) -> String {
        self.0.id()
    }

    fn encrypt<'py>(&mut self, py: Python<'py>, plaintext: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, &self.0.encrypt(plaintext)?))
    }

    fn decrypt<'py>(&mut self, py: Python<'py>, message: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        Ok(bytes(py, &self.0.decrypt(message)?))
    }

    /// Whether a session-opening message belongs to this session.
    fn matches(&self, message: &[u8]) -> bool {
        self.0.matches(message)
    }
}

/// Whether `data` is an Ed25519 public key as a nym-client reads the keys of an address.
#[pyfunction]
fn is_nym_ed25519_key(data: &[u8]) -> bool {
    <&[u8; identity::PUBLIC_KEY_LEN]>::try_from(data).is_ok_and(identity::decompresses)
}

/// A nym-client Text request: (type, message, recipient or sender tag, reply SURBs,
/// connection id).
type NymRequestText = (
    &'static str,
    Option<String>,
    Option<String>,
    Option<u32>,
    Option<u64>,
);

/// Reads a Text request to a nym-client as the real client does; `JsonError` carries
/// serde's text.
#[pyfunction]
fn parse_nym_request_text(text: &str) -> PyResult<NymRequestText> {
    Ok(match json::parse_request_text(text)? {
        ClientRequestText::Send {
            message,
            recipient,
            connection_id,
        } => ("send", Some(message), Some(recipient), None, connection_id),
        ClientRequestText::SendAnonymous {
            recipient,
            message,
            reply_surbs,
            connection_id,
        } => (
            "sendAnonymous",
            Some(message),
            Some(recipient),
            Some(reply_surbs),
            connection_id,
        ),
        ClientRequestText::Reply {
            sender_tag,
            message,
            connection_id,
        } => (
            "reply",
            Some(message),
            Some(sender_tag),
            None,
            connection_id,
        ),
        ClientRequestText::SelfAddress => ("selfAddress", None, None, None, None),
    })
}

/// Reads a JSON document from outside the process into Python values (object keys in
/// document order) within serde_json's bounds; `JsonError` carries serde_json's text.
#[pyfunction]
fn json_loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    Ok(json::read(data, PyValue(py))?)
}

/// Builds a Python value from serde_json's reading, as it reads.
struct PyValue<'py>(Python<'py>);

fn python_error<E: de::Error>(err: PyErr) -> E {
    E::custom(err)
}

impl<'de, 'py> DeserializeSeed<'de> for PyValue<'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for PyValue<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.None().into_bound(self.0))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0, v).to_owned().into_any())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let Ok(number) = v.into_pyobject(self.0);
        Ok(number.into_any())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        let Ok(number) = v.into_pyobject(self.0);
        Ok(number.into_any())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let Ok(number) = v.into_pyobject(self.0);
        Ok(number.into_any())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0, v).into_any())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.0);
        while let Some(item) = seq.next_element_seed(PyValue(self.0))? {
            list.append(item).map_err(python_error)?;
        }
        Ok(list.into_any())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0);
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(PyValue(self.0))?;
            dict.set_item(key, value).map_err(python_error)?;
        }
        Ok(dict.into_any())
    }
}

/// Proves the core works in this process: a signature and an envelope round trip.
#[pyfunction]
fn self_test() -> PyResult<bool> {
    let alice = Identity::generate()?;
    let sig = alice.sign("self-test", b"nymchat")?;
    PublicKey::from_bytes(&alice.signing_public())?.verify("self-test", b"nymchat", &sig)?;
    let sealed = envelope::seal(
        &alice,
        &alice.agreement_public(),
        "self-test",
        &[0; 16],
        b"ok",
    )?;
    let opened = envelope::open(&alice, "self-test", &sealed, Some(&alice.signing_public()))?;
    Ok(opened.plaintext == b"ok")
}

/// nymchat's crypto core, and its JSON reader, in Rust.
#[pymodule(name = "_native")]
mod native {
    #[pymodule_export]
    use super::{
        PyAccount, PyIdentity, PyMlsGroup, PyMlsMember, PyProcessed, PyPublicKey, PyReassembler,
        PySession, encode_frames, frame_count, is_nym_ed25519_key, json_loads,
        mls_key_package_identity, open_anonymous, open_envelope, parse_nym_request_text,
        seal_anonymous, seal_envelope, self_test, verify, verify_batch,
    };
    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        use crate::{envelope, framing, identity};
        super::bind_errors(m.py())?;
        m.add("__version__", crate::VERSION)?;
        m.add("FRAME_SIZE", framing::FRAME_SIZE)?;
        m.add("FRAME_HEADER_LEN", framing::HEADER_LEN)?;
        m.add("FRAME_CHUNK_LEN", framing::CHUNK_LEN)?;
        m.add("MAX_FRAMES", framing::MAX_FRAMES)?;
        m.add("MESSAGE_ID_LEN", envelope::MESSAGE_ID_LEN)?;
        m.add("ENVELOPE_OVERHEAD", envelope::OVERHEAD)?;
        m.add("ANONYMOUS_ENVELOPE_OVERHEAD", envelope::ANONYMOUS_OVERHEAD)?;
        m.add("PUBLIC_KEY_LEN", identity::PUBLIC_KEY_LEN)?;
        m.add("SIGNATURE_LEN", identity::SIGNATURE_LEN)?;
        Ok(())
    }
}
