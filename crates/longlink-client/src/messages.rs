//! The client's message registry: [`longlink_wire::Registry`], with the client's names for
//! registering and its [`Message`] for what comes back.

use std::fmt;
use std::sync::Arc;

use longlink_wire::{Encoding, MessageInfo, MessageOptions, Registry};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::message::Message;

/// The message types a client sends and receives, registered like the server's
/// `longlink::Processor`: a JSON name (the bare Rust type name unless given) and a protobuf
/// id (registration order from 0 unless given). One registry serves both encodings; share it
/// between many connections as an `Arc<Messages>`. The codecs are the server's own, from
/// [`longlink_wire`].
///
/// Unlike the server's processor there is no direction: every registered type can be both
/// sent and received.
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
/// let payload = messages.encode(&Hello { name: "ann".into() }, Encoding::Json, false)?;
/// assert_eq!(payload, br#"{"Hello":{"name":"ann"}}"#);
/// let msg = messages.decode(&payload, Encoding::Json, false)?;
/// assert_eq!(msg.downcast::<Hello>().unwrap().name, "ann");
/// # Ok::<(), longlink_client::Error>(())
/// ```
#[derive(Default)]
pub struct Messages {
    /// Names, ids and codecs.
    registry: Registry,
    /// Each entry's name, by registry index, shared with every [`Message`] decoded so that a
    /// received message allocates no name.
    names: Vec<Arc<str>>,
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Messages").field(&self.registry).finish()
    }
}

impl Messages {
    /// An empty registry.
    ///
    /// ```
    /// let messages = longlink_client::Messages::new();
    /// assert_eq!(messages.len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `T` under its bare type name, with the next id in registration order (the
    /// number of types registered before it).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// let mut messages = longlink_client::Messages::new();
    /// messages.register::<Ping>()?;
    /// assert_eq!(messages.id_of::<Ping>(), Some(0));
    /// assert_eq!(messages.name_of::<Ping>(), Some("Ping"));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn register<T>(&mut self) -> Result<&mut Self>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + 'static,
    {
        let info = self.registry.register::<T>(MessageOptions::new())?;
        let name = Arc::from(info.name.as_str());
        Ok(self.added(name))
    }

    /// Registers `T` under an explicit name and protobuf id (as the server's
    /// `MessageOptions::new().name(..).id(..)`).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct C2sUserHeartBeat { #[prost(int64, tag = "1")] ptime: i64 }
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct S2cKick { #[prost(string, tag = "1")] reason: String }
    /// let mut messages = longlink_client::Messages::new();
    /// messages
    ///     .register_with::<C2sUserHeartBeat>("C2S_UserHeartBeat", 0)?
    ///     .register_with::<S2cKick>("S2C_Kick", 7)?;
    /// assert_eq!(messages.id_of::<S2cKick>(), Some(7));
    /// assert!(messages.register_with::<S2cKick>("Other", 8).is_err()); // the type again
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn register_with<T>(&mut self, name: impl Into<String>, id: u16) -> Result<&mut Self>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + 'static,
    {
        let info = self.registry.register::<T>(options(name, id))?;
        let name = Arc::from(info.name.as_str());
        Ok(self.added(name))
    }

    /// Registers `T` with the server's own options: name, id and delivery class (a
    /// resumable session does not count [`volatile`](MessageOptions::volatile) messages, so
    /// register those as the server does; its manifest says which they are).
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct S2cTyping {}
    /// use longlink_client::{Delivery, MessageOptions, Messages};
    ///
    /// let mut messages = Messages::new();
    /// messages.register_options::<S2cTyping>(MessageOptions::new().name("S2C_Typing").id(10).volatile())?;
    /// assert_eq!(messages.id_of::<S2cTyping>(), Some(10));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn register_options<T>(&mut self, opts: MessageOptions) -> Result<&mut Self>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + 'static,
    {
        let info = self.registry.register::<T>(opts)?;
        let name = Arc::from(info.name.as_str());
        Ok(self.added(name))
    }

    /// Registers a type that only has serde impls, under an explicit name and id: it can be
    /// sent and received over a JSON connection only.
    ///
    /// ```
    /// use longlink_client::{EncodeError, Encoding, Error, Messages};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Note { text: String }
    ///
    /// let mut messages = Messages::new();
    /// messages.register_json::<Note>("Note", 0)?;
    /// let note = Note { text: "hi".into() };
    /// assert_eq!(messages.encode(&note, Encoding::Json, false)?, br#"{"Note":{"text":"hi"}}"#);
    /// assert!(matches!(
    ///     messages.encode(&note, Encoding::Protobuf, false),
    ///     Err(Error::Encode(EncodeError::WrongEncoding { .. }))
    /// ));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn register_json<T>(&mut self, name: impl Into<String>, id: u16) -> Result<&mut Self>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let info = self.registry.register_json::<T>(options(name, id))?;
        let name = Arc::from(info.name.as_str());
        Ok(self.added(name))
    }

    /// Registers a type that only has a prost impl, under an explicit name and id: it can be
    /// sent and received over a protobuf connection only.
    ///
    /// ```
    /// use longlink_client::{Encoding, Messages};
    ///
    /// #[derive(Clone, PartialEq, prost::Message)]
    /// struct Int32Value { #[prost(int32, tag = "1")] value: i32 }
    ///
    /// let mut messages = Messages::new();
    /// messages.register_protobuf::<Int32Value>("Int32Value", 1)?;
    /// let payload = messages.encode(&Int32Value { value: 150 }, Encoding::Protobuf, false)?;
    /// assert_eq!(payload, [0x00, 0x01, 0x08, 0x96, 0x01]);
    /// assert!(messages.encode(&Int32Value { value: 1 }, Encoding::Json, false).is_err());
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn register_protobuf<T>(&mut self, name: impl Into<String>, id: u16) -> Result<&mut Self>
    where
        T: prost::Message + Default + Send + 'static,
    {
        let info = self.registry.register_protobuf::<T>(options(name, id))?;
        let name = Arc::from(info.name.as_str());
        Ok(self.added(name))
    }

    /// Keeps the name of the entry just registered.
    fn added(&mut self, name: Arc<str>) -> &mut Self {
        self.names.push(name);
        self
    }

    /// How many types are registered.
    ///
    /// ```
    /// assert!(longlink_client::Messages::new().is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.registry.len()
    }

    /// Whether no type is registered.
    ///
    /// ```
    /// assert!(longlink_client::Messages::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.registry.is_empty()
    }

    /// The name `T` is registered under.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// let mut messages = longlink_client::Messages::new();
    /// messages.register_with::<Ping>("P", 3)?;
    /// assert_eq!(messages.name_of::<Ping>(), Some("P"));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn name_of<T: 'static>(&self) -> Option<&str> {
        self.registry.info_of::<T>().map(|i| i.name.as_str())
    }

    /// The protobuf id `T` is registered under.
    ///
    /// ```
    /// # #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// # struct Ping {}
    /// let mut messages = longlink_client::Messages::new();
    /// messages.register_with::<Ping>("P", 3)?;
    /// assert_eq!(messages.id_of::<Ping>(), Some(3));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn id_of<T: 'static>(&self) -> Option<u16> {
        self.registry.info_of::<T>().map(|i| i.id)
    }

    /// Encodes a registered message into one payload (no TCP length prefix): `{"Name":{..}}`
    /// for JSON, `| id: u16 | body |` for protobuf, the id big-endian unless
    /// `id_little_endian`.
    ///
    /// ```
    /// use longlink_client::{Encoding, Messages};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Int32Value {
    ///     #[prost(int32, tag = "1")]
    ///     value: i32,
    /// }
    ///
    /// let mut messages = Messages::new();
    /// messages.register_with::<Int32Value>("Int32Value", 1)?;
    /// let v = Int32Value { value: 150 };
    /// assert_eq!(messages.encode(&v, Encoding::Protobuf, false)?, [0x00, 0x01, 0x08, 0x96, 0x01]);
    /// assert_eq!(messages.encode(&v, Encoding::Protobuf, true)?, [0x01, 0x00, 0x08, 0x96, 0x01]);
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn encode<T: 'static>(
        &self,
        msg: &T,
        encoding: Encoding,
        id_little_endian: bool,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(64);
        self.registry
            .encode(msg, encoding, id_little_endian, &mut out)?;
        Ok(out)
    }

    /// Decodes one payload into the registered type it names. An unknown name or id, or a
    /// body that does not decode, is an error.
    ///
    /// ```
    /// use longlink_client::{DecodeError, Encoding, Error, Messages};
    ///
    /// #[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, prost::Message)]
    /// struct Hello {
    ///     #[prost(string, tag = "1")]
    ///     name: String,
    /// }
    ///
    /// let mut messages = Messages::new();
    /// messages.register::<Hello>()?;
    /// let msg = messages.decode(br#"{"Hello":{"name":"x"}}"#, Encoding::Json, false)?;
    /// assert_eq!((msg.name(), msg.id()), ("Hello", 0));
    /// assert!(matches!(
    ///     messages.decode(br#"{"Bye":{}}"#, Encoding::Json, false),
    ///     Err(Error::Decode(DecodeError::UnknownName(_)))
    /// ));
    /// # Ok::<(), longlink_client::Error>(())
    /// ```
    pub fn decode(
        &self,
        payload: &[u8],
        encoding: Encoding,
        id_little_endian: bool,
    ) -> Result<Message> {
        let (index, value) = self.registry.decode(payload, encoding, id_little_endian)?;
        let info: &MessageInfo = self.registry.info(index);
        Ok(Message::new(
            (Arc::clone(&self.names[index]), info.id, info.type_name),
            info.delivery,
            value,
        ))
    }
}

/// The server's `MessageOptions::new().name(name).id(id)`.
fn options(name: impl Into<String>, id: u16) -> MessageOptions {
    MessageOptions::new().name(name).id(id)
}
