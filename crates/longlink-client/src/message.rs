//! One received message: its registered name and id, and the decoded value.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// One received message: its registered name and id, and the decoded value, to be taken out
/// with [`downcast`](Message::downcast) or looked at with [`downcast_ref`](Message::downcast_ref).
///
/// ```
/// use longlink_client::{Encoding, Messages};
///
/// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
/// struct Hello {
///     #[prost(string, tag = "1")]
///     name: String,
/// }
///
/// let mut messages = Messages::new();
/// messages.register::<Hello>()?;
/// let msg = messages.decode(&[0, 0, 0x0a, 1, b'x'], Encoding::Protobuf, false)?;
/// assert!(msg.is::<Hello>());
/// assert_eq!(msg.downcast_ref::<Hello>().unwrap().name, "x");
/// let hello: Hello = msg.downcast().unwrap();
/// assert_eq!(hello.name, "x");
/// # Ok::<(), longlink_client::Error>(())
/// ```
pub struct Message {
    name: Arc<str>,
    id: u16,
    type_name: &'static str,
    delivery: longlink_wire::Delivery,
    value: Box<dyn Any + Send>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("name", &&*self.name)
            .field("id", &self.id)
            .field("type", &self.type_name)
            .finish_non_exhaustive()
    }
}

impl Message {
    /// A decoded value and what the registry knows of it.
    pub(crate) fn new(
        (name, id, type_name): (Arc<str>, u16, &'static str),
        delivery: longlink_wire::Delivery,
        value: Box<dyn Any + Send>,
    ) -> Message {
        Message {
            name,
            id,
            type_name,
            delivery,
            value,
        }
    }

    /// Its type's delivery class, as registered here (the server's manifest states it): a
    /// volatile message is not numbered by a resumable session.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Typing {}
    /// use longlink_client::{Delivery, Encoding, MessageOptions, Messages};
    ///
    /// let mut messages = Messages::new();
    /// messages.register_options::<Typing>(MessageOptions::new().name("Typing").id(10).volatile())?;
    /// let msg = messages.decode(br#"{"Typing":{}}"#, Encoding::Json, false)?;
    /// assert_eq!(msg.delivery(), Delivery::Volatile);
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn delivery(&self) -> longlink_wire::Delivery {
        self.delivery
    }

    /// The registered name (the JSON envelope key).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{}}"#, longlink_client::Encoding::Json, false)?;
    /// assert_eq!(msg.name(), "Ping");
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registered protobuf id.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register_with::<Ping>("Ping", 5)?;
    /// let msg = messages.decode(&[0, 5], longlink_client::Encoding::Protobuf, false)?;
    /// assert_eq!(msg.id(), 5);
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The Rust type's full name (`std::any::type_name`).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{}}"#, longlink_client::Encoding::Json, false)?;
    /// assert!(msg.type_name().ends_with("Ping"));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Whether the message is a `T`.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{}}"#, longlink_client::Encoding::Json, false)?;
    /// assert!(msg.is::<Ping>() && !msg.is::<String>());
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn is<T: Any>(&self) -> bool {
        self.value.is::<T>()
    }

    /// A reference to the value if it is a `T`.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping { #[prost(int32, tag = "1")] n: i32 }
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{"n":4}}"#, longlink_client::Encoding::Json, false)?;
    /// assert_eq!(msg.downcast_ref::<Ping>().map(|p| p.n), Some(4));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }

    /// The value if it is a `T`; otherwise the message back.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping { #[prost(int32, tag = "1")] n: i32 }
    /// # let mut messages = longlink_client::Messages::new();
    /// # messages.register::<Ping>()?;
    /// let msg = messages.decode(br#"{"Ping":{"n":4}}"#, longlink_client::Encoding::Json, false)?;
    /// let msg = msg.downcast::<String>().unwrap_err(); // not a String: handed back
    /// assert_eq!(msg.downcast::<Ping>().unwrap().n, 4);
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn downcast<T: Any>(self) -> Result<T, Message> {
        match self.value.downcast::<T>() {
            Ok(v) => Ok(*v),
            Err(value) => Err(Message { value, ..self }),
        }
    }
}
