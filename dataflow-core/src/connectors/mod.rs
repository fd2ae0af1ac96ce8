//! Connectors: where streams come from ([`Source`]) and where they go
//! ([`Sink`]).
//!
//! Built-in sources read iterators, collections, scripted
//! [`StreamElement`](crate::StreamElement)s and async streams; [`split`]
//! is the framework of replayable, rescalable sources made of splits, with
//! watermarks per split; built-in sinks
//! collect into a `Vec`, send into a tokio channel, call a function, or write
//! lines to a file. A connector of your own implements the same traits and
//! is added with [`StreamEnvironment::add_source`](crate::StreamEnvironment::add_source)
//! or [`Stream::sink`](crate::Stream::sink).

mod blocking;
pub mod file;
pub(crate) mod local_folder;
mod sink;
mod source;
pub mod split;
mod splits;
pub(crate) mod store;
pub mod two_phase;

pub use sink::{CallbackSink, ChannelSink, CollectHandle, CollectSink, FileSink, Sink};
pub use source::{ElementSource, IterSource, Source, SourceContext, SourceStatus, StreamSource};
pub use split::SplitSource;
pub(crate) use splits::iter_splits;
pub use splits::{IterSplit, SPLIT_TURN};
