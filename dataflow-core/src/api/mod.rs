//! The typed API: the environment, [`Stream`], [`KeyedStream`] and
//! [`ConnectedStreams`].
//!
//! Every method checks types at compile time: an operator whose input type
//! differs from the stream's does not compile. Operators are added with
//! methods on these types; each returns a new stream and records a node in
//! the environment's graph.

pub(crate) mod client;
mod connected;
mod environment;
mod keyed;
mod sink_node;
mod stream;
mod windowed;

pub use client::JobClient;
pub use connected::ConnectedStreams;
pub use environment::StreamEnvironment;
pub use keyed::KeyedStream;
pub use sink_node::SinkNode;
pub use stream::Stream;
pub use windowed::WindowedStream;
