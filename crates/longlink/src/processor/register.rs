//! Registering message types: each type says which codecs it has (serde for JSON, prost for
//! protobuf, or both); registering a type on a processor whose encoding it lacks is a
//! start-up error, not a failure at the first message.

use std::any::type_name;

use longlink_wire::{Encoding, MessageInfo, MessageOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Processor, ProcessorError, Route};

impl Processor {
    /// Registers an incoming type usable with either encoding: serde for JSON, prost for
    /// protobuf. Name = bare type name; id = registration order.
    pub fn register<T>(&mut self) -> Result<&MessageInfo, ProcessorError>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + Sync + 'static,
    {
        self.register_with::<T>(MessageOptions::new())
    }

    /// Registers a server-to-client type (it needs no destination).
    pub fn register_outgoing<T>(&mut self) -> Result<&MessageInfo, ProcessorError>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + Sync + 'static,
    {
        self.register_with::<T>(MessageOptions::new().outgoing())
    }

    /// Registers a type with both codecs and explicit options (name, pinned id, outgoing).
    pub fn register_with<T>(&mut self, opts: MessageOptions) -> Result<&MessageInfo, ProcessorError>
    where
        T: Serialize + DeserializeOwned + prost::Message + Default + Send + Sync + 'static,
    {
        self.insert(None, |r| r.register::<T>(opts))
    }

    /// Registers a type that has only serde impls (no prost attributes needed); a protobuf
    /// processor refuses it with [`ProcessorError::WrongEncoding`].
    ///
    /// ```
    /// use longlink::processor::{MessageOptions, ProcessorError};
    /// use longlink::{Encoding, Processor};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Notice { text: String }
    ///
    /// let mut json = Processor::new(Encoding::Json);
    /// json.register_json::<Notice>(MessageOptions::new().outgoing()).unwrap();
    /// let mut protobuf = Processor::new(Encoding::Protobuf);
    /// assert!(matches!(
    ///     protobuf.register_json::<Notice>(MessageOptions::new()),
    ///     Err(ProcessorError::WrongEncoding { .. })
    /// ));
    /// ```
    pub fn register_json<T>(&mut self, opts: MessageOptions) -> Result<&MessageInfo, ProcessorError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.insert(Some((Encoding::Json, type_name::<T>())), |r| {
            r.register_json::<T>(opts)
        })
    }

    /// Registers a type that has only a prost impl (no serde derives needed); a JSON
    /// processor refuses it with [`ProcessorError::WrongEncoding`].
    pub fn register_protobuf<T>(
        &mut self,
        opts: MessageOptions,
    ) -> Result<&MessageInfo, ProcessorError>
    where
        T: prost::Message + Default + Send + Sync + 'static,
    {
        self.insert(Some((Encoding::Protobuf, type_name::<T>())), |r| {
            r.register_protobuf::<T>(opts)
        })
    }

    /// Registers through `f`; `only` is the one codec the type has, if it lacks the other.
    fn insert(
        &mut self,
        only: Option<(Encoding, &'static str)>,
        f: impl FnOnce(
            &mut longlink_wire::Registry,
        ) -> Result<&MessageInfo, longlink_wire::RegistryError>,
    ) -> Result<&MessageInfo, ProcessorError> {
        if let Some((has, type_name)) = only.filter(|(has, _)| *has != self.encoding()) {
            return Err(ProcessorError::WrongEncoding {
                type_name,
                has,
                encoding: self.encoding(),
            });
        }
        let index = self.codec.register(f)?;
        self.routes.push(Route::default());
        Ok(self.codec.registry().info(index))
    }
}
