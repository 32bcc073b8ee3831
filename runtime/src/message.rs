//! What may travel over a channel.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value that can be written to a channel.
///
/// Every message type must be serializable so that the same program can move
/// from the `greenlets` backend to the `parallel` one, where a channel may
/// cross OS processes and nodes. Within one OS process, messages are *moved*,
/// never serialized.
///
/// The trait is implemented for every type that is
/// `Serialize + DeserializeOwned + Send + 'static`; there is nothing to
/// implement by hand.
///
/// ```
/// fn takes<T: csp_runtime::Message>() {}
/// takes::<(u64, String, Vec<f64>)>();
/// ```
pub trait Message: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Message for T {}
